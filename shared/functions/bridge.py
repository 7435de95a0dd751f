"""The Bridge as function_app holds it: settings checked at import, everything else built on first use.

Importing function_app is what a cold start pays before the Functions host can index the app, and the
Bridge needs pydantic, every configured source format and the storage SDK. So import time only reads
and checks the app settings (plain Python), and the Bridge is built by the first invocation that needs
it: the first webhook pays for what the webhook path needs, and nothing of the queue side (msgraph, the
state tables), which the Bridge builds only when the queue side first runs.

Import never raises. An exception while the Python worker indexes function_app leaves the real host
running with no function at all ("Worker failed to index functions", logged by azure-functions-host
GrpcWorkerChannel.ProcessFunctionMetadataResponses, which goes on with what it got: nothing). Every
route 404s, the queue and the timers sit idle, and the deployment reports success. So an app-wide
setting that is missing or invalid is kept as the problem (`problem`, naming each setting, never a
value), logged once at import, and every function reports it: the HTTP functions answer 503
problem+json naming the settings and /api/health answers 503 `unhealthy` (shared.functions.http); the
queue function raises AppNotConfigured, so the host retries its messages and then moves them to the
poison queue, which the poison-drain timer turns into dead letters once the settings are fixed (the
host's poison copies live seven days: fix it within that; the `unconfigured` alert fires within
minutes); the timers log UNCONFIGURED at error level and return.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from shared.config.exceptions import AppNotConfigured, ConfigurationError
from shared.config.settings import Settings, load_settings

if TYPE_CHECKING:
    from shared.runtime import Bridge
    from shared.storage.queues import QueueSender

log = logging.getLogger(__name__)

#: How the log says the app is unconfigured: infra/modules/alerts.bicep's `unconfigured` alert
#: searches for it (a test holds the two together).
UNCONFIGURED = "bridge not configured"


class LazyBridge:
    def __init__(
        self,
        settings: Settings | None,
        queues: QueueSender | None = None,
        problem: ConfigurationError | None = None,
    ) -> None:
        if (settings is None) == (problem is None):
            raise ValueError("a LazyBridge has settings or a problem, not both")
        self.settings = settings
        self.problem = problem
        self._queues = queues
        self._bridge: Bridge | None = None
        # HTTP functions run on the worker's thread pool: two first requests must build one Bridge.
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> LazyBridge:
        """Never raises: an unusable app-wide setting becomes `problem` (names, never values)."""
        try:
            return cls(load_settings(os.environ if env is None else env))
        except ConfigurationError as exc:
            problem = exc
        except Exception as exc:  # a check that let something through: still never at import
            problem = ConfigurationError([f"The app settings could not be read ({type(exc).__name__})."])
        log.error("%s: every function refuses until it is fixed.\n%s", UNCONFIGURED, problem)
        return cls(None, problem=problem)

    def get(self) -> Bridge:
        """The Bridge, built on the first call (which also logs the sources set aside, and why).
        Raises AppNotConfigured, naming each setting, when the app-wide settings are not usable."""
        if self.problem is not None:
            raise AppNotConfigured(self.problem.problems)
        bridge = self._bridge
        if bridge is None:
            with self._lock:
                if self._bridge is None:
                    from shared.runtime import Bridge

                    assert self.settings is not None  # no problem: the settings were read
                    self._bridge = Bridge(self.settings, self._queues)
                bridge = self._bridge
        return bridge


async def run_timer(lazy: LazyBridge, name: str, job: Callable[[Bridge], Awaitable[object]]) -> None:
    """A timer function's body: the job on the Bridge, or an error logged when the app is not
    configured (a timer has no caller to answer and no retry: the log line is what alerts). Whatever the
    job returns is dropped: a timer function returning anything but None fails in the Python worker."""
    if lazy.problem is not None:
        log.error("%s: timer %s skipped. %s", UNCONFIGURED, name, " ".join(lazy.problem.problems))
        return
    await job(lazy.get())
