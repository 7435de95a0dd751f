"""A small stand-in for the Azure Functions host, for machines without Core Tools, that speaks for the
real host: each behaviour it imitates cites the source it was read from (see docs/local/devhost.md,
"The dev host: the real host's rules").

It serves the app from the metadata the app itself declares (`app.get_functions()`, the same JSON the
real host indexes) and from host.json:

- httpTrigger: devtools.devhost.httptrigger (the host's throttle, routing, and request as the worker sees it);
- queueTrigger: devtools.devhost.queues (the WebJobs storage queue listener and QueueProcessor);
- timerTrigger: devtools.devhost.timers (singleton listener, schedule monitor);
- every invocation: devtools.devhost.worker (functionTimeout, worker restarts, the worker's checks);
- connections: devtools.devhost.storage (connection strings and identity-based settings).

This module holds host.json's options and the function metadata. Any other binding type is refused at
start-up with a clear message rather than silently ignored.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

from devtools.devhost.timers import SingletonOptions
from devtools.devhost.worker import DEFAULT_FUNCTION_TIMEOUT

log = logging.getLogger("devhost")

SUPPORTED = {"httpTrigger", "http", "queueTrigger", "timerTrigger"}


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with the host's defaults."""

    batch_size: int = 16
    #: None: the host's default, half of batchSize (the WebJobs QueuesOptions page).
    new_batch_threshold: int | None = None
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, host_json: dict[str, Any]) -> QueueOptions:
        queues = host_json.get("extensions", {}).get("queues", {})
        return cls(
            batch_size=int(queues.get("batchSize", 16)),
            new_batch_threshold=(int(queues["newBatchThreshold"]) if "newBatchThreshold" in queues else None),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            visibility_timeout=_timespan(queues.get("visibilityTimeout", "00:00:00")),
            max_polling_interval=_timespan(queues.get("maxPollingInterval", "00:01:00")),
            message_encoding=str(queues.get("messageEncoding", "base64")).lower(),
        )

    @property
    def refill_at(self) -> int:
        """Messages in progress at or below which the listener takes another batch."""
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return self.batch_size // 2

    @property
    def most_in_progress(self) -> int:
        """The most messages one listener has in progress: a batch taken at the threshold."""
        return self.batch_size + self.refill_at


@dataclass(frozen=True)
class HttpOptions:
    """host.json `extensions.http` throttles, with the host's defaults (-1: unbounded).

    maxOutstandingRequests counts requests waiting and running; maxConcurrentRequests those running.
    Over the outstanding limit the host answers 429 at once. dynamicThrottlesEnabled is read but
    never fires on Linux (see devtools.devhost.httptrigger).
    """

    max_outstanding_requests: int = -1
    max_concurrent_requests: int = -1
    dynamic_throttles_enabled: bool = False

    @classmethod
    def from_host_json(cls, host_json: dict[str, Any]) -> HttpOptions:
        http = host_json.get("extensions", {}).get("http", {})
        return cls(
            max_outstanding_requests=int(http.get("maxOutstandingRequests", -1)),
            max_concurrent_requests=int(http.get("maxConcurrentRequests", -1)),
            dynamic_throttles_enabled=bool(http.get("dynamicThrottlesEnabled", False)),
        )


_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)$")


def _timespan(value: str | float) -> float:
    """host.json timespans: `hh:mm:ss` or `d.hh:mm:ss`; a bare number is milliseconds."""
    if isinstance(value, int | float):
        return float(value) / 1000
    match = _TIMESPAN.match(value.strip())
    if match is None:
        raise ValueError(f"host.json timespan {value!r} is not hh:mm:ss")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    function: Any
    bindings: list[dict[str, Any]]

    @property
    def trigger(self) -> dict[str, Any]:
        return next(b for b in self.bindings if b["type"].endswith("Trigger"))

    @property
    def has_return(self) -> bool:
        """Whether the function declares a `$return` output binding (HTTP functions do)."""
        return any(b.get("name") == "$return" for b in self.bindings)


def load_functions(app: func.FunctionApp) -> list[FunctionSpec]:
    specs = []
    for fn in app.get_functions():  # may be called once per app: keep the result
        meta = json.loads(fn.get_function_json())
        bindings = meta["bindings"]
        unsupported = sorted({b["type"] for b in bindings} - SUPPORTED)
        if unsupported:
            raise RuntimeError(
                f"function {fn.get_function_name()!r} uses {', '.join(unsupported)}: the dev host "
                f"supports {', '.join(sorted(SUPPORTED))}. Use `func start` for other bindings."
            )
        specs.append(FunctionSpec(str(fn.get_function_name()), fn.get_user_function(), bindings))
    return specs


def function_timeout(host_json: dict[str, Any]) -> float | None:
    """host.json `functionTimeout` in seconds: absent, Flex Consumption's default (30 minutes); "-1",
    none (ScriptJobHostOptionsSetup.ConfigureFunctionTimeout)."""
    value = host_json.get("functionTimeout")
    if value is None:
        return DEFAULT_FUNCTION_TIMEOUT
    if str(value).strip() in ("-1", "-1.00:00:00"):
        return None
    return _timespan(value)


def singleton_options(host_json: dict[str, Any]) -> SingletonOptions:
    """host.json `singleton` (listenerLockPeriod, listenerLockRecoveryPollingInterval)."""
    section = host_json.get("singleton", {})
    defaults = SingletonOptions()
    return SingletonOptions(
        listener_lock_period=_timespan(section["listenerLockPeriod"])
        if "listenerLockPeriod" in section
        else defaults.listener_lock_period,
        listener_lock_recovery_polling_interval=_timespan(section["listenerLockRecoveryPollingInterval"])
        if "listenerLockRecoveryPollingInterval" in section
        else defaults.listener_lock_recovery_polling_interval,
    )


def default_host_id(app_dir: Path) -> str:
    """The host id of a host not on Azure (ScriptHostIdProvider.GetDefaultHostId, local branch):
    `AzureFunctionsWebHost__hostId` when set, else the machine name (letters and digits) and a stable
    hash of the app's folder, lower-cased, at most 32 characters, no trailing dash. Instances of one app
    share it, hence its locks and timer statuses. (The host's own hash function is not reproduced.)"""
    configured = os.environ.get("AzureFunctionsWebHost__hostId")  # noqa: SIM112 - the host's own spelling
    if configured:
        return configured
    machine = "".join(c for c in socket.gethostname() if c.isalnum())
    host_id = f"{machine}-{zlib.crc32(str(app_dir.resolve()).encode())}"
    return host_id[:32].lower().rstrip("-")


def read_host_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


# The pieces that used to live here, for the code and tests that import them from this module.
from devtools.devhost.httptrigger import Throttle, http_app, http_routes, route_pattern  # noqa: E402
from devtools.devhost.queues import QueueListener  # noqa: E402
from devtools.devhost.timers import TimerRunner  # noqa: E402

__all__ = [
    "FunctionSpec",
    "HttpOptions",
    "QueueListener",
    "QueueOptions",
    "Throttle",
    "TimerRunner",
    "http_app",
    "http_routes",
    "load_functions",
    "read_host_json",
    "route_pattern",
]
