"""The dev host follows the real Functions host's rules (README, "The dev host: the real host's rules"):
each test names the rule and the source it was read from. The queue rules are driven over a fake
queue client here; tests/e2e/test_devhost_*.py prove them against Azurite."""

from __future__ import annotations

import asyncio
import base64
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from devtools.devhost.host import FunctionSpec, QueueListener, QueueOptions, http_app, http_routes
from devtools.devhost.queues import poison_queue_name
from devtools.devhost.worker import FunctionTimeout, NonNoneReturn, Worker

BODY = base64.b64encode(b'{"hello": "queue"}').decode()


class FakeQueue:
    """Just enough of azure-storage-queue's aio QueueClient: what the listener did to each message."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.deleted: list[tuple[str, str | None]] = []
        self.updated: list[tuple[str, str | None, int]] = []
        self._receipts = 0

    async def send_message(self, content: str) -> None:
        self.sent.append(content)

    async def delete_message(self, message_id: str, pop_receipt: str | None) -> None:
        self.deleted.append((message_id, pop_receipt))

    async def update_message(
        self, message_id: str, pop_receipt: str | None, *, visibility_timeout: int
    ) -> SimpleNamespace:
        self.updated.append((message_id, pop_receipt, visibility_timeout))
        self._receipts += 1
        return SimpleNamespace(pop_receipt=f"renewed-{self._receipts}")


def message(content: str = BODY, dequeue_count: int = 1) -> Any:
    return SimpleNamespace(
        id="m-1",
        content=content,
        dequeue_count=dequeue_count,
        inserted_on=None,
        expires_on=None,
        next_visible_on=None,
        pop_receipt="receipt-0",
    )


def listener(
    function: Any, queue_name: str = "bridge-events", worker: Worker | None = None, **options: Any
) -> tuple[QueueListener, FakeQueue, FakeQueue]:
    bindings = [{"type": "queueTrigger", "name": "message", "queueName": queue_name}]
    spec = FunctionSpec("apply_event", function, bindings)
    made = QueueListener(spec, "UseDevelopmentStorage=true", QueueOptions(**options), worker)
    queue, poison = FakeQueue(), FakeQueue()
    made.queue = queue
    if made.poison is not None:
        made.poison = poison
    return made, queue, poison


async def failing(message: Any) -> None:
    raise RuntimeError("transient")


# ---- 1. a queue whose name ends in -poison has no poison queue ----------------------------------------


def test_a_poison_queue_has_no_poison_queue_of_its_own() -> None:
    """QueueListenerFactory.CreatePoisonQueueReference: none for a name ending in "-poison", nor when
    "<name>-poison" would not be a valid queue name (over 63 characters)."""
    assert poison_queue_name("learning-events") == "learning-events-poison"
    assert poison_queue_name("learning-events-poison") is None
    assert poison_queue_name("q" * 57) is None


async def test_a_failure_on_a_poison_queue_is_neither_released_nor_moved() -> None:
    """QueueProcessor.CompleteProcessingMessageAsync without a poison queue: the message is left
    invisible (it comes back when its lease ends), even at maxDequeueCount; never moved to
    `<queue>-poison-poison`, where the old dev host put it."""
    made, queue, _ = listener(failing, "learning-events-poison", max_dequeue_count=5)
    assert made.poison is None

    await made._handle(message(dequeue_count=5))

    assert (queue.updated, queue.deleted, queue.sent) == ([], [], [])


async def test_past_max_dequeue_count_a_poison_queue_message_is_not_run_and_stays() -> None:
    """QueueProcessor.BeginProcessingMessageAsync: past maxDequeueCount the function is not run;
    HandlePoisonMessageAsync does nothing without a poison queue, so the message stays until its TTL."""
    runs: list[Any] = []

    async def function(message: Any) -> None:
        runs.append(message)

    made, queue, _ = listener(function, "learning-events-poison", max_dequeue_count=5)

    await made._handle(message(dequeue_count=6))

    assert (runs, queue.updated, queue.deleted) == ([], [], [])


# ---- 2. a message already past maxDequeueCount is poisoned without running ---------------------------


async def test_a_message_received_past_max_dequeue_count_is_poisoned_without_running() -> None:
    """QueueProcessor.BeginProcessingMessageAsync: DequeueCount > MaxDequeueCount (its last attempt died
    with a crash, a restarted worker or a timeout) moves it to the poison queue, function not run."""
    runs: list[Any] = []

    async def function(message: Any) -> None:
        runs.append(message)

    made, queue, poison = listener(function, max_dequeue_count=5)

    await made._handle(message(dequeue_count=6))

    assert (runs, poison.sent, queue.deleted) == ([], [BODY], [("m-1", "receipt-0")])


async def test_at_max_dequeue_count_a_message_still_runs_and_is_poisoned_when_it_fails() -> None:
    made, queue, poison = listener(failing, max_dequeue_count=5)

    await made._handle(message(dequeue_count=5))

    assert (poison.sent, queue.deleted, queue.updated) == ([BODY], [("m-1", "receipt-0")], [])


async def test_below_max_dequeue_count_a_failed_message_is_released_after_visibility_timeout() -> None:
    made, queue, poison = listener(failing, max_dequeue_count=5, visibility_timeout=10)

    await made._handle(message(dequeue_count=2))

    assert (poison.sent, queue.deleted, queue.updated) == ([], [], [("m-1", "receipt-0", 10)])


# ---- 3. a message that is not base64 is poisoned at once ---------------------------------------------


async def test_a_message_that_is_not_base64_goes_to_the_poison_queue_without_running() -> None:
    """QueueServiceClientProvider's MessageDecodingFailed handler: HandlePoisonMessageAsync at once, on
    the first delivery (no attempt counted, the function never sees it). The old dev host ran the
    attempts out first."""
    runs: list[Any] = []

    async def function(message: Any) -> None:
        runs.append(message)

    made, queue, poison = listener(function, max_dequeue_count=5)

    await made._handle(message('{"plain": "text"}', dequeue_count=1))

    assert (runs, poison.sent, queue.deleted) == ([], ['{"plain": "text"}'], [("m-1", "receipt-0")])


# ---- 6. the receive lease is renewed at half-time ---------------------------------------------------


async def test_the_receive_lease_is_ten_minutes_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVHOST_MESSAGE_LEASE_SECONDS", raising=False)
    made, _, _ = listener(failing)
    assert made.lease_seconds == 600


async def test_a_long_run_keeps_its_message_by_renewing_the_lease_at_half_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """QueueListener.CreateUpdateMessageVisibilityTimer: every half lease the message is made invisible
    for a whole lease again, each time with the pop receipt of the previous update; the final delete
    uses the latest one."""
    monkeypatch.setenv("DEVHOST_MESSAGE_LEASE_SECONDS", "1")

    async def slow(message: Any) -> None:
        await asyncio.sleep(1.3)

    made, queue, _ = listener(slow)

    await made._handle(message())

    assert queue.updated == [("m-1", "receipt-0", 1), ("m-1", "renewed-1", 1)]
    assert queue.deleted == [("m-1", "renewed-2")]


# ---- 5. functionTimeout restarts the worker, with every invocation it runs ----------------------------


async def test_a_timeout_kills_every_invocation_of_the_worker_and_each_fails_at_its_own_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FunctionExecutor + WebScriptHostExceptionHandler + RpcFunctionInvocationDispatcher: the first
    invocation to time out restarts the worker, killing the other one too (it stops at once); the host
    still counts that one as running until its own timeout, then fails it without a second restart."""
    worker = Worker(function_timeout=0.3)
    progress: list[str] = []

    async def stuck(label: str) -> None:
        progress.append(f"{label} started")
        await asyncio.sleep(5)
        progress.append(f"{label} finished")

    async def second() -> None:
        await asyncio.sleep(0.1)
        await worker.invoke("stuck", stuck, {"label": "second"}, has_return=False)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.INFO, logger="devhost"):
        first = asyncio.create_task(worker.invoke("stuck", stuck, {"label": "first"}, has_return=False))
        results = await asyncio.gather(first, second(), return_exceptions=True)
    elapsed = loop.time() - started

    assert [type(r) for r in results] == [FunctionTimeout, FunctionTimeout]
    assert progress == ["first started", "second started"]
    assert worker.restarts == 1
    assert 0.35 < elapsed < 1.0  # the second failed at its own deadline (0.1 + 0.3 s), not at once
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Initiating cancellation." in m for m in messages) == 2
    assert sum("Restart of language worker process(es) completed." in m for m in messages) == 2


async def test_a_queue_message_whose_run_times_out_is_not_deleted_but_released() -> None:
    """A timeout is a failed invocation: QueueProcessor releases the message (or poisons it at
    maxDequeueCount); it is never deleted."""

    async def stuck(message: Any) -> None:
        await asyncio.sleep(5)

    made, queue, poison = listener(stuck, worker=Worker(function_timeout=0.2), visibility_timeout=3)

    await made._handle(message(dequeue_count=1))

    assert (queue.deleted, queue.updated, poison.sent) == ([], [("m-1", "receipt-0", 3)], [])


async def test_a_timeout_in_one_function_kills_the_http_requests_the_worker_runs() -> None:
    """One worker per instance runs every function: an HTTP invocation in flight dies with it and the
    request fails (500) at its own deadline."""
    worker = Worker(function_timeout=0.4)

    async def slow_http(req: Any) -> Any:
        await asyncio.sleep(5)

    async def stuck(message: Any) -> None:
        await asyncio.sleep(5)

    http = FunctionSpec(
        "slow",
        slow_http,
        [
            {"type": "httpTrigger", "name": "req", "route": "slow", "methods": ["GET"]},
            {"type": "http", "name": "$return", "direction": "out"},
        ],
    )
    server = TestServer(http_app(http_routes([http], "api"), worker))
    await server.start_server()
    made, _, _ = listener(stuck, worker=worker)
    try:
        async with ClientSession() as client:
            request = asyncio.create_task(client.get(str(server.make_url("/api/slow"))))
            await asyncio.sleep(0.2)
            await made._handle(message())  # times out at 0.4 s: restarts the worker
            assert worker.restarts == 1
            assert (await request).status == 500
    finally:
        await server.close()


# ---- 9. the Python worker's checks and the host's routing ---------------------------------------------


async def test_a_queue_function_that_returns_a_value_fails() -> None:
    """azure_functions_worker/dispatcher.py: a function without a $return binding that returns non-None
    fails ("function 'x' without a $return binding returned a non-None value")."""

    async def returns(message: Any) -> str:
        return "done"

    made, queue, _ = listener(returns, visibility_timeout=0)

    await made._handle(message())

    assert (queue.deleted, queue.updated) == ([], [("m-1", "receipt-0", 0)])
    with pytest.raises(NonNoneReturn, match="non-None value"):
        await Worker().invoke("returns", returns, {"message": None}, has_return=False)


async def test_routes_match_without_case_a_wrong_method_is_404_and_repeated_headers_are_joined() -> None:
    """WebScriptHostHttpRoutesManager (ASP.NET Core routes, case-insensitive, methods as a route
    constraint: no match is a 404, never a 405) and GrpcMessageConversionExtensions.ToRpcHttp (header
    names lower-cased, repeated values joined with ","; query values the same, empty ones left out)."""
    seen: list[Any] = []

    def echo(req: Any) -> Any:
        import azure.functions as func

        seen.append(req)
        return func.HttpResponse("ok")

    spec = FunctionSpec(
        "webhook",
        echo,
        [
            {"type": "httpTrigger", "name": "req", "route": "webhooks/{source}", "methods": ["POST"]},
            {"type": "http", "name": "$return", "direction": "out"},
        ],
    )
    server = TestServer(http_app(http_routes([spec], "api"), Worker()))
    await server.start_server()
    try:
        async with ClientSession() as client:
            url = str(server.make_url("/API/WebHooks/LMS?a=1&a=2&empty="))
            headers = [("X-Sig", "one"), ("X-Sig", "two")]
            assert (await client.post(url, headers=headers)).status == 200
            assert (await client.get(url)).status == 404
            assert (await client.post(str(server.make_url("/api/nowhere")))).status == 404
    finally:
        await server.close()
    [req] = seen
    assert req.route_params == {"source": "LMS"}
    assert req.headers["x-sig"] == "one,two"
    assert dict(req.params) == {"a": "1,2"}
