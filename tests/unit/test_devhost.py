"""The dev host reads the same host.json the Functions host does."""

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from devtools.devhost.host import (
    FunctionSpec,
    HttpOptions,
    QueueListener,
    QueueOptions,
    Throttle,
    _timespan,
    route_pattern,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "seconds"), [("00:00:10", 10.0), ("00:02:00", 120.0), ("1.00:00:00", 86400.0), (1500, 1.5)]
)
def test_host_json_timespans(value: str | int, seconds: float) -> None:
    assert _timespan(value) == seconds


def test_a_malformed_timespan_is_refused() -> None:
    with pytest.raises(ValueError, match="hh:mm:ss"):
        _timespan("10 seconds")


def test_queue_options_come_from_the_apps_host_json() -> None:
    options = QueueOptions.from_host_json(json.loads((ROOT / "host.json").read_text()))
    assert options == QueueOptions(
        batch_size=16,
        new_batch_threshold=8,
        max_dequeue_count=5,
        visibility_timeout=10.0,
        max_polling_interval=2.0,
    )


def test_the_hosts_defaults_apply_when_host_json_is_silent() -> None:
    assert QueueOptions.from_host_json({}) == QueueOptions()


@pytest.mark.parametrize(
    ("template", "path", "values"),
    [
        ("health", "/api/health", {}),
        ("webhooks/{source}/{token?}", "/api/webhooks/lms", {"source": "lms"}),
        ("webhooks/{source}/{token?}", "/api/webhooks/lms/t0k", {"source": "lms", "token": "t0k"}),
        ("items/{id:int}", "/api/items/12", {"id": "12"}),
    ],
)
def test_route_templates_match_paths_like_the_hosts(template: str, path: str, values: dict[str, str]) -> None:
    found = route_pattern("api", template).match(path)
    assert found is not None
    assert {k: v for k, v in found.groupdict().items() if v is not None} == values


# ---- HTTP throttles (host.json extensions.http) ---------------------------------------------------


def test_http_throttles_come_from_the_apps_host_json() -> None:
    """The app sets none (Flex Consumption does not apply them; its per-instance HTTP concurrency is
    set in infra/), so the dev host applies the host's defaults: unbounded."""
    options = HttpOptions.from_host_json(json.loads((ROOT / "host.json").read_text()))
    assert options == HttpOptions()
    assert HttpOptions.from_host_json(
        {"extensions": {"http": {"maxOutstandingRequests": 200, "maxConcurrentRequests": 100}}}
    ) == HttpOptions(max_outstanding_requests=200, max_concurrent_requests=100)


async def _throttled_server(
    options: HttpOptions, release: asyncio.Event
) -> tuple[TestServer, Throttle, list[int]]:
    throttle = Throttle(options)
    running: list[int] = []

    async def slow(request: web.Request) -> web.Response:
        running.append(1)
        await release.wait()
        running.pop()
        return web.Response(text="ok")

    app = web.Application(middlewares=[throttle.middleware])
    app.router.add_post("/api/webhooks/generic", slow)
    server = TestServer(app)
    await server.start_server()
    return server, throttle, running


async def test_over_max_outstanding_requests_the_host_answers_429_with_scale_out_and_no_retry_after() -> None:
    """HttpThrottleMiddleware.RejectRequest: status 429 and `X-FUNCTION-SCALEOUT: 1`, nothing else."""
    release = asyncio.Event()
    server, throttle, running = await _throttled_server(
        HttpOptions(max_outstanding_requests=3, max_concurrent_requests=2), release
    )
    try:
        async with ClientSession() as client:
            url = str(server.make_url("/api/webhooks/generic"))
            pending = [asyncio.create_task(client.post(url)) for _ in range(3)]
            while throttle.outstanding < 3:
                await asyncio.sleep(0.01)
            assert len(running) == 2  # maxConcurrentRequests: the third waits
            refused = await client.post(url)
            assert refused.status == 429
            assert refused.headers["X-FUNCTION-SCALEOUT"] == "1"
            assert "Retry-After" not in refused.headers
            assert await refused.read() == b""
            release.set()
            assert [r.status for r in await asyncio.gather(*pending)] == [200, 200, 200]
            assert (await client.post(url)).status == 200  # below the limit again
    finally:
        await server.close()


async def test_the_dynamic_throttle_never_refuses_on_linux() -> None:
    """HostPerformanceManager reads its counters from WEBSITE_COUNTERS_APP, which only the (Windows)
    App Service sandbox sets: on Linux (Flex Consumption) dynamicThrottlesEnabled refuses nothing, even
    while the host is slow (the old dev host refused while its event loop lagged)."""
    release = asyncio.Event()
    server, throttle, _ = await _throttled_server(HttpOptions(dynamic_throttles_enabled=True), release)
    try:
        async with ClientSession() as client:
            url = str(server.make_url("/api/webhooks/generic"))
            slow = [asyncio.create_task(client.post(url)) for _ in range(20)]
            await asyncio.sleep(0.2)
            time.sleep(1.5)  # the loop held: a lagging host
            release.set()
            assert {r.status for r in await asyncio.gather(*slow)} == {200}
            assert throttle.rejected == 0
    finally:
        await server.close()


def test_the_listener_takes_another_batch_at_new_batch_threshold_as_the_host_does() -> None:
    assert QueueOptions(batch_size=16, new_batch_threshold=8).refill_at == 8
    assert QueueOptions(batch_size=16).refill_at == 8  # the host's default: half of batchSize
    assert QueueOptions(batch_size=1).refill_at == 0


def test_a_listener_has_at_most_a_batch_beyond_the_threshold_in_progress() -> None:
    assert QueueOptions(batch_size=16, new_batch_threshold=8).most_in_progress == 24


class _QueueMessage:
    def __init__(self, message_id: str) -> None:
        self.id = message_id
        self.content = base64.b64encode(b"{}").decode()
        self.dequeue_count = 1
        self.inserted_on = self.expires_on = self.next_visible_on = None
        self.pop_receipt = "receipt"


class _Queue:
    """Just enough of azure-storage-queue's aio QueueClient for a listener: messages handed out in
    batches, deletions recorded."""

    def __init__(self, count: int) -> None:
        self.waiting = [_QueueMessage(f"m-{n}") for n in range(count)]
        self.receives = 0
        self.deleted: list[str] = []

    async def receive_messages(self, *, max_messages: int, **_: Any) -> AsyncIterator[_QueueMessage]:
        self.receives += 1
        batch, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        for message in batch:
            yield message

    async def delete_message(self, message_id: str, pop_receipt: str | None) -> None:
        self.deleted.append(message_id)

    async def create_queue(self) -> None:
        pass


async def test_the_listener_refills_at_new_batch_threshold_and_runs_at_most_batch_plus_threshold() -> None:
    """As the WebJobs QueuesOptions page says: batches of BatchSize are taken while the messages in
    progress number NewBatchThreshold or fewer, so at most BatchSize + NewBatchThreshold run at once."""
    release = asyncio.Semaphore(0)
    running: list[int] = [0]
    most: list[int] = [0]

    async def function(message: Any) -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        await release.acquire()
        running[0] -= 1

    async def settle() -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    bindings = [{"type": "queueTrigger", "name": "message", "queueName": "bridge-events"}]
    options = QueueOptions(batch_size=16, new_batch_threshold=8, max_polling_interval=0.05)
    listener = QueueListener(
        FunctionSpec("apply_event", function, bindings), "UseDevelopmentStorage=true", options
    )
    queue = _Queue(40)
    listener.queue = listener.poison = queue
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    await settle()
    assert (running[0], queue.receives) == (16, 1)  # one batch; 16 in progress is above the threshold
    for _ in range(7):
        release.release()
    await settle()
    assert (running[0], queue.receives) == (9, 1)  # still above it: no new batch
    release.release()
    await settle()
    assert (running[0], queue.receives) == (24, 2)  # down to 8: another batch of 16
    for _ in range(40):
        release.release()
    await settle()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert most[0] == 24
    assert sorted(queue.deleted) == sorted(f"m-{n}" for n in range(40))
