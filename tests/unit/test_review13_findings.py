"""Review 13 (issue 12: bench, lean queue side, JSON reads in the gateway, dev host batches): each test
fails on the code it was written against, and its docstring says what is wrong and why it matters."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from devtools.devhost.host import FunctionSpec, QueueListener, QueueOptions, TimerRunner
from shared.delivery import CourseActivityUpserter, UpsertResult
from shared.delivery.deadletters import DeadLetters
from shared.delivery.exceptions import TransientFailure
from shared.delivery.upsert import classify
from shared.delivery.worker import EventWorker
from shared.events.model import CanonicalEvent, CourseStatus
from shared.events.queue import QueuedEvent
from shared.graph.errors import GraphError
from shared.graph.gateway import ActivityWrite
from shared.graph.msgraph_gateway import MsGraphLearningGraph
from tests.builders import USER_ID, event
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore

PROVIDER = "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90"
ADA = "ada.lovelace@contoso.example"


# ---- the lean queue side ------------------------------------------------------------------------


def _message(body: CanonicalEvent) -> str:
    return QueuedEvent(event=body, received_at=datetime.now(UTC)).model_dump_json(
        by_alias=True, exclude_none=True
    )


async def test_lean_path_a_redelivery_of_an_applied_event_is_not_dead_lettered_when_its_learner_is_gone() -> (
    None
):
    """On the lean path (a source that cannot void) `apply` resolves the learner *before* it learns
    that the event is a redelivery (the delivery row is only inserted after the sync). A redelivery
    reaching a worker whose cache does not hold the learner (another instance, a restart, the 1 h TTL)
    after the learner left Entra (offboarded, mail changed) fails with learnerNotFound: the worker then
    marks the delivery of an event that *was applied* as "failed" and parks it as a dead letter, which
    the retry timer replays every few minutes and an operator is asked to fix. The voidable path
    answers the same redelivery DEDUPLICATED without any lookup, and the README promises
    "redelivery 0" Graph calls. Expected: the redelivery is acknowledged as a duplicate and the
    delivery row still says "applied"."""
    graph = FakeGraph()
    graph.users_by_mail[ADA] = USER_ID
    graph.contents["course-101"] = "content-101"
    state = MemoryStateStore()
    queue = FakeQueue()

    def worker() -> EventWorker:  # a fresh instance: its resolver's cache is empty
        upserter = CourseActivityUpserter(graph, state, voiding_sources=())
        return EventWorker(upserter, DeadLetters(state, queue), queue)

    body = _message(CanonicalEvent.model_validate(event(source="generic")))
    assert await worker().process(body, 1) is UpsertResult.CREATED
    del graph.users_by_mail[ADA]  # the learner left Entra after the event was applied
    calls_before = len(graph.calls)

    outcome = await worker().process(body, 1)

    delivery = await state.delivery("generic", "evt-1")
    assert delivery is not None
    assert (outcome, delivery.status) == (UpsertResult.DEDUPLICATED, "applied")
    assert await state.dead_letter("generic", "evt-1") is None
    # The lean path finds out it is a redelivery after trying: the learner lookup is the one call.
    assert all(call.startswith("find_user") for call in graph.calls[calls_before:])


# ---- the Graph gateway reading JSON itself -------------------------------------------------------


def _gateway(answer: httpx.Response) -> tuple[MsGraphLearningGraph, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer

    no_retries = RetryHandlerOption(max_retries=0)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        options={no_retries.get_key(): no_retries},
    )
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), http)
    adapter.base_url = "https://graph.test/v1.0"
    return MsGraphLearningGraph(GraphServiceClient(request_adapter=adapter), PROVIDER), sent


@pytest.mark.parametrize(
    ("status", "content", "content_type"),
    [
        (429, b"Too many requests", "text/plain"),
        (429, b"", "text/plain"),
        (503, b"<html><body>Service Unavailable</body></html>", "text/html"),
    ],
)
async def test_a_throttled_answer_without_a_graph_error_body_keeps_its_retry_after(
    status: int, content: bytes, content_type: str
) -> None:
    """`_json` sends through the adapter with the {"XXX": ODataError} mapping; an error answer whose body
    is not Graph's JSON error (empty, text, a gateway's HTML page) surfaces as kiota's APIError, and
    `_call` turns that into GraphError(status, "apiError") *without* reading its Retry-After (APIError
    carries `response_headers`; only the ODataError branch reads them). Graph's throttling guidance
    says to wait the Retry-After: a 429 asking for 120 s is retried after the bridge's default 30 s
    (more throttling), and a 503 with Retry-After is not classified as throttling at all (it goes to
    the 2 s exponential backoff and, after 16 tries, to the poison queue)."""
    answer = httpx.Response(
        status, content=content, headers={"Retry-After": "120", "Content-Type": content_type}
    )
    graph, _ = _gateway(answer)

    with pytest.raises(GraphError) as failed:
        await graph.get_activity("course-101")

    assert failed.value.status == status
    assert failed.value.retry_after == 120
    wait = classify(failed.value)
    assert isinstance(wait, TransientFailure)
    assert wait.retry_after == 120


@pytest.mark.parametrize(
    "odd", [{"id": None}, {"id": ""}, {"learnerUserId": None}], ids=["null-id", "empty-id", "null-learner"]
)
async def test_an_activity_answer_without_its_id_is_a_bad_gateway_not_a_record(odd: dict[str, Any]) -> None:
    """`record_from_json` reads every field with `str(doc.get(key, ""))`: a JSON null becomes the
    *string* "None" and a missing or empty id the empty string, and `_read_record` returns that as an
    ActivityRecord although the commit promises that an answer that is not an activity is a 502
    GraphError. The upserter stores `created.id` as the row's Graph id, so every later event of that
    activity PATCHes `.../learningCourseActivities/None` (or the collection URL for ""): 404, the row is
    cleared, the record looked up again and adopted with the same id, until the event poisons; a null
    learnerUserId reads as the learner "None" and dead-letters an adoptable record as
    activityOwnerMismatch. (The SDK models it replaced gave None, which the row stores as "no Graph id
    yet" and the next event heals by looking the record up.) Expected: GraphError 502 invalidResponse."""
    document = {
        "@odata.type": "#microsoft.graph.learningSelfInitiatedCourse",
        "id": "graph-id-1",
        "externalcourseActivityId": "course-101",
        "learnerUserId": USER_ID,
        "learningContentId": "content-101",
        "status": "inProgress",
        "completionPercentage": 40,
        **odd,
    }
    graph, _ = _gateway(httpx.Response(201, json=document))
    write = ActivityWrite(status=CourseStatus.IN_PROGRESS, completion_percentage=40)

    with pytest.raises(GraphError) as failed:
        await graph.create_activity("course-101", USER_ID, "content-101", write)
    assert (failed.value.status, failed.value.code) == (502, "invalidResponse")


# ---- the dev host ------------------------------------------------------------------------------


class _FakeQueueClient:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.deleted: list[str] = []
        self.updated: list[str] = []

    async def send_message(self, content: str) -> None:
        self.sent.append(content)

    async def delete_message(self, message_id: str, pop_receipt: str | None) -> None:
        self.deleted.append(message_id)

    async def update_message(self, message_id: str, pop_receipt: str | None, **_: Any) -> None:
        self.updated.append(message_id)


class _Message:
    def __init__(self, content: str, dequeue_count: int) -> None:
        self.id = "m-1"
        self.content = content
        self.dequeue_count = dequeue_count
        self.inserted_on = self.expires_on = self.next_visible_on = None
        self.pop_receipt = "receipt"


Listener = tuple[QueueListener, "_FakeQueueClient", "_FakeQueueClient"]


def _listener(function: Any, options: QueueOptions) -> Listener:
    bindings = [{"type": "queueTrigger", "name": "message", "queueName": "bridge-events"}]
    listener = QueueListener(
        FunctionSpec("apply_event", function, bindings), "UseDevelopmentStorage=true", options
    )
    queue, poison = _FakeQueueClient(), _FakeQueueClient()
    listener.queue, listener.poison = queue, poison
    return listener, queue, poison


async def test_devhost_a_message_that_is_not_base64_reaches_the_poison_queue() -> None:
    """`_handle` decodes the message (`base64.b64decode`) *outside* its try block: a message on the
    queue that is not base64 (plain text, as the Python queue SDK sends without
    TextBase64EncodePolicy — FACTS.md) raises binascii.Error out of the task. Nothing settles it: it is
    not deleted, not made visible again and never moved to `<queue>-poison`, whatever its dequeue count;
    it reappears after every 5-minute lease forever, and the only trace is asyncio's "Task exception
    was never retrieved". Corrected since (issue 21): the Functions host does not count it as a failed
    attempt. Its queue SDK cannot decode the message, so the function never sees it, and the
    extension's MessageDecodingFailed handler (Azure/azure-sdk-for-net
    sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/QueueServiceClientProvider.cs)
    poisons it at once, whatever its dequeue count. Expected: on its first delivery, the message is
    moved to the poison queue and deleted, and the function never runs."""
    invoked: list[Any] = []

    async def function(message: Any) -> None:
        invoked.append(message)

    listener, queue, poison = _listener(function, QueueOptions(max_dequeue_count=5))
    first_delivery = _Message('{"not": "base64"}', dequeue_count=1)

    await listener._handle(first_delivery)  # type: ignore[arg-type]

    assert (len(poison.sent), queue.deleted, invoked) == (1, ["m-1"], [])


async def test_devhost_a_timer_that_missed_its_schedule_runs_once_not_once_per_missed_occurrence() -> None:
    """TimerRunner makes one croniter at start-up and asks it `get_next` after every run: the next
    occurrence after the *previous occurrence*, not after now. When the loop was held (a SIGSTOPped dev
    host: the bench pauses the idle bridge for whole phases; a long invocation; a laptop asleep), every
    occurrence missed meanwhile fires back to back on resumption. The Functions host runs a missed
    schedule once (with `IsPastDue`) and then waits for the next occurrence after now. In `make bench
    --baseline`, the bridge resumed after minutes paused runs `retry_parked` (every 5 minutes) once per
    missed occurrence at the start of its phase, in the process and against the table proxy whose CPU
    and round trips the phase reports per event. Here: a schedule of every second, the loop held for
    3.3 s by the first run; expected at most one catch-up run right after it."""
    runs: list[float] = []

    async def function(timer: Any) -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            time.sleep(3.3)  # the loop held, as a paused process's would be

    bindings = [{"type": "timerTrigger", "name": "timer", "schedule": "* * * * * *"}]
    runner = TimerRunner(FunctionSpec("retry_parked", function, bindings))
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    deadline = time.monotonic() + 8
    while not runs and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(3.3 + 0.4)  # the held run ends; 0.4 s on, before the next on-time occurrence
    resumed_at = runs[0] + 3.3
    stop.set()
    await asyncio.wait_for(task, 5)

    catch_up = [t for t in runs[1:] if t < resumed_at + 0.4]
    assert len(catch_up) <= 1, f"{len(catch_up)} runs back to back after the held run"
