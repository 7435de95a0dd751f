"""A small stand-in for the Azure Functions host, for machines without Core Tools.

It does what the host does for this app's bindings, from the metadata the app itself declares
(`app.get_functions()`, the same JSON the real host indexes) and from host.json:

- httpTrigger: serves the route under the routePrefix with the declared methods;
- queueTrigger: polls the queue (Azurite) with host.json's batchSize, takes another batch whenever
  the messages in progress drop to newBatchThreshold (so up to batchSize + newBatchThreshold run at
  once, as the host's QueuesOptions document), decodes messages per messageEncoding, deletes a
  message when the function returns, makes it visible again after visibilityTimeout when it raises, and
  moves it to `<queue>-poison` after maxDequeueCount attempts.

Any other binding type is refused at start-up with a clear message rather than silently ignored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.functions.queue import QueueMessage as TriggerMessage  # the worker's, with dequeue_count
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

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
    Over the outstanding limit, or while the dynamic throttle says the host is overloaded, the host
    answers 429 at once instead of letting the request wait for a timeout.
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


class Throttle:
    """The Functions host's HTTP throttles as aiohttp middleware. The real host's dynamic throttle
    watches performance counters (threads, connections, CPU, memory); this stand-in watches the
    event loop's lag, the dev host's own sign of being past what it can serve: lagging more than a
    second at LAG_STREAK measurements in a row (one slow request alone is not overload)."""

    RETRY_AFTER_SECONDS = 1
    LAG_LIMIT_SECONDS = 1.0
    LAG_STREAK = 3

    def __init__(self, options: HttpOptions) -> None:
        self.options = options
        self.outstanding = 0
        self.rejected = 0
        self.lag_streak = 0
        limit = options.max_concurrent_requests
        self._running = asyncio.Semaphore(limit) if limit > 0 else None

    def overloaded(self) -> str | None:
        """Why the host refuses a request now, or None."""
        limit = self.options.max_outstanding_requests
        if limit > 0 and self.outstanding >= limit:
            return "the host is at its maxOutstandingRequests limit"
        if self.options.dynamic_throttles_enabled and self.lag_streak >= self.LAG_STREAK:
            return "the host is overloaded (dynamic throttle)"
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        reason = self.overloaded()
        if reason is not None:
            self.rejected += 1
            return web.Response(
                status=429,
                text=f"Too many requests: {reason}.",
                headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)},
            )
        self.outstanding += 1
        try:
            if self._running is None:
                first: web.StreamResponse = await handler(request)
                return first
            async with self._running:
                queued: web.StreamResponse = await handler(request)
            return queued
        finally:
            self.outstanding -= 1

    async def watch_lag(self, stop: asyncio.Event, interval: float = 0.1) -> None:
        """Measures how late the loop wakes up (for the dynamic throttle)."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            start = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            lagging = loop.time() - start - interval > self.LAG_LIMIT_SECONDS
            self.lag_streak = self.lag_streak + 1 if lagging else 0


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


async def invoke(function: Any, **kwargs: Any) -> Any:
    """Call a user function as the Python worker does: async on the loop, sync in a thread."""
    if inspect.iscoroutinefunction(function):
        return await function(**kwargs)
    return await asyncio.to_thread(function, **kwargs)


# ---- HTTP -------------------------------------------------------------------------------------


def http_routes(
    specs: list[FunctionSpec], route_prefix: str, throttle: Throttle | None = None
) -> web.Application:
    middlewares = [throttle.middleware] if throttle is not None else []
    # the app enforces its own body limit
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=middlewares)
    for spec in specs:
        trigger = spec.trigger
        if trigger["type"] != "httpTrigger":
            continue
        for route in _route_variants(trigger.get("route") or spec.name):
            path = "/" + "/".join(p for p in (route_prefix.strip("/"), route.strip("/")) if p)
            for method in trigger.get("methods") or ["GET", "POST"]:
                app.router.add_route(method.upper(), path, _http_handler(spec, trigger["name"]))
            log.info("http   %-16s %s %s", spec.name, ",".join(trigger.get("methods") or ["*"]), path)
    return app


def _route_variants(template: str) -> list[str]:
    """Functions route templates as aiohttp paths: constraints dropped, and a trailing optional
    parameter (`{token?}`) served both with and without its segment, as the host does."""
    route = re.sub(
        r"\{(\w+)(:[^}?]*)?(\?)?\}", lambda m: "{" + m.group(1) + (m.group(3) or "") + "}", template
    )
    optional = re.search(r"/\{(\w+)\?\}$", route)
    if optional is None:
        return [route]
    return [route[: optional.start()], route.replace("?}", "}")]


def _http_handler(spec: FunctionSpec, arg_name: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        req = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            params=dict(request.query),
            route_params=dict(request.match_info),
            body=await request.read(),
        )
        try:
            response: func.HttpResponse = await invoke(spec.function, **{arg_name: req})
        except Exception:
            log.exception("function %s raised", spec.name)
            return web.Response(status=500)
        headers = dict(response.headers)
        headers.pop("Content-Type", None)
        return web.Response(
            status=response.status_code,
            body=response.get_body(),
            headers={
                **headers,
                "Content-Type": response.mimetype
                + (f"; charset={response.charset}" if response.charset else ""),
            },
        )

    return handle


# ---- queues -----------------------------------------------------------------------------------


class QueueListener:
    """One queue-triggered function, driven like the host's queue listener."""

    def __init__(self, spec: FunctionSpec, connection_string: str, options: QueueOptions) -> None:
        trigger = spec.trigger
        self.spec = spec
        self.arg_name = trigger["name"]
        self.queue_name = trigger["queueName"]
        self.options = options
        self.queue = _queue_client(connection_string, self.queue_name)
        self.poison = _queue_client(connection_string, f"{self.queue_name}-poison")
        # How long a received message stays invisible to others; a dev host that dies returns its
        # messages after this. The host renews a 10-minute lease; fault runs shorten it.
        self.lease_seconds = int(os.environ.get("DEVHOST_MESSAGE_LEASE_SECONDS", "300"))

    async def run(self, stop: asyncio.Event) -> None:
        for client in (self.queue, self.poison):
            with contextlib.suppress(ResourceExistsError):
                await client.create_queue()
        log.info("queue  %-16s %s", self.spec.name, self.queue_name)
        running: set[asyncio.Task[None]] = set()
        stopping = asyncio.create_task(stop.wait())
        idle = 0.1
        try:
            while not stop.is_set():
                if len(running) > self.options.refill_at:  # busy: wait for one to finish
                    await asyncio.wait({*running, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    continue
                taken = await self._take(running)
                idle = 0.1 if taken else min(idle * 2, self.options.max_polling_interval)
                if not taken:
                    await asyncio.wait({stopping}, timeout=idle)
        finally:
            stopping.cancel()
            if running:  # a stopping host lets the functions it started finish
                await asyncio.wait(running)

    async def _take(self, running: set[asyncio.Task[None]]) -> int:
        """Receive one batch and start a task per message: how many were taken."""
        try:
            messages = [
                m
                async for m in self.queue.receive_messages(
                    messages_per_page=self.options.batch_size,
                    max_messages=self.options.batch_size,
                    visibility_timeout=self.lease_seconds,
                )
            ]
        except AzureError as exc:  # storage restarting: keep going, as the host does
            log.warning("queue %s: polling failed (%s); retrying", self.queue_name, type(exc).__name__)
            return 0
        for message in messages:
            task = asyncio.create_task(self._handle(message))
            running.add(task)
            task.add_done_callback(running.discard)
        return len(messages)

    async def _handle(self, message: QueueMessage) -> None:
        try:  # a message that cannot be decoded is a failed attempt, as the host's binding makes it
            body = self._decode(message.content)
            msg = TriggerMessage(  # type: ignore[no-untyped-call]
                id=message.id,
                body=body,
                dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            await invoke(self.spec.function, **{self.arg_name: msg})
        except Exception as exc:
            outcome = self._failed(message, exc)
        else:
            outcome = self._delete(message)
        try:
            await outcome
        except AzureError as exc:  # storage restarting: the message reappears after its lease
            log.warning("queue %s: settling a message failed (%s)", self.queue_name, type(exc).__name__)

    async def _delete(self, message: QueueMessage) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self.queue.delete_message(message.id, message.pop_receipt)

    async def _failed(self, message: QueueMessage, exc: Exception) -> None:
        attempts = message.dequeue_count or 1
        log.warning(
            "function %s failed (attempt %d of %d): %s",
            self.spec.name,
            attempts,
            self.options.max_dequeue_count,
            exc,
        )
        if attempts >= self.options.max_dequeue_count:
            await self.poison.send_message(message.content)  # as it came, decodable or not
            await self.queue.delete_message(message.id, message.pop_receipt)
            log.error("message %s moved to %s-poison", message.id, self.queue_name)
            return
        await self.queue.update_message(
            message.id, message.pop_receipt, visibility_timeout=int(self.options.visibility_timeout)
        )

    def _decode(self, content: Any) -> bytes:
        raw = content if isinstance(content, bytes) else str(content).encode()
        return base64.b64decode(raw, validate=True) if self.options.message_encoding == "base64" else raw

    async def close(self) -> None:
        await self.queue.close()
        await self.poison.close()


def _queue_client(connection_string: str, name: str) -> QueueClient:
    """A queue client that does not read the environment on every request: azure-core's default
    makes aiohttp look up ~/.netrc and the proxy variables in a worker thread per request, CPU that
    the bench would count as the worker's (the Functions host polls in .NET, outside the worker).
    The dev host talks to a local emulator, never through a proxy."""
    transport = AioHttpTransport(use_env_settings=False)
    return QueueClient.from_connection_string(connection_string, name, transport=transport)


class TimerRunner:
    """A timer-triggered function on its NCRONTAB schedule (seconds first, as the host reads it)."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        fields = spec.trigger["schedule"].split()
        # croniter puts the seconds field last; NCRONTAB puts it first.
        self._schedule = " ".join(fields[1:] + fields[:1]) if len(fields) == 6 else " ".join(fields)
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        from datetime import UTC, datetime

        from croniter import croniter

        schedule = croniter(self._schedule, datetime.now(UTC))
        log.info("timer  %-16s %s", self.spec.name, self.spec.trigger["schedule"])
        while not stop.is_set():
            delay = schedule.get_next(float) - datetime.now(UTC).timestamp()
            past_due = delay < 0
            if past_due:  # missed while the loop was held: run once, then go on from now, as the host
                schedule = croniter(self._schedule, datetime.now(UTC))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, delay))
                return
            try:
                await invoke(self.spec.function, **{self.spec.trigger["name"]: _Timer(past_due)})
                self.runs += 1
            except Exception:
                log.exception("timer function %s raised", self.spec.name)


class _Timer:
    """What a timer-triggered function receives (azure.functions.TimerRequest's surface)."""

    def __init__(self, past_due: bool) -> None:
        self.past_due = past_due


def read_host_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document
