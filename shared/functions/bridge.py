"""The Bridge as function_app holds it: settings validated at import, everything else built on first use.

Importing function_app is what a cold start pays before the Functions host can index the app, and the
Bridge needs pydantic, every configured source format and the storage SDK. So import time only reads
and checks the app settings (plain Python: a setting nothing works without still stops start-up, with
one message naming each), and the Bridge is built by the first invocation that needs it: the first
webhook pays for what the webhook path needs, and nothing of the queue side (msgraph, the state tables)
which the Bridge builds only when the queue side first runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from shared.config.settings import Settings, load_settings

if TYPE_CHECKING:
    from shared.runtime import Bridge
    from shared.storage.queues import QueueSender


class LazyBridge:
    def __init__(self, settings: Settings, queues: QueueSender | None = None) -> None:
        self.settings = settings
        self._queues = queues
        self._bridge: Bridge | None = None
        # HTTP functions run on the worker's thread pool: two first requests must build one Bridge.
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> LazyBridge:
        """Raises ConfigurationError, naming each setting (never a value), when the app cannot run."""
        return cls(load_settings(os.environ if env is None else env))

    def get(self) -> Bridge:
        """The Bridge, built on the first call (which also logs the sources set aside, and why)."""
        bridge = self._bridge
        if bridge is None:
            with self._lock:
                if self._bridge is None:
                    from shared.runtime import Bridge

                    self._bridge = Bridge(self.settings, self._queues)
                bridge = self._bridge
        return bridge
