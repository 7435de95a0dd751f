from datetime import UTC, datetime

import pytest

from shared.delivery import CourseActivityUpserter, EventWorker, TransientFailure, UpsertResult
from shared.events.model import CanonicalEvent
from shared.events.queue import DEADLETTER_QUEUE, DeadLetter, QueuedEvent
from shared.graph.errors import GraphError
from tests.builders import USER_ID, event
from tests.fakes import FakeGraph, FakeQueue

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def message(**overrides: object) -> str:
    queued = QueuedEvent(
        event=CanonicalEvent.model_validate(event(source="generic", **overrides)), received_at=NOW
    )
    return queued.model_dump_json(by_alias=True)


def worker(graph: FakeGraph, queue: FakeQueue) -> EventWorker:
    return EventWorker(CourseActivityUpserter(graph), queue, clock=lambda: NOW)


@pytest.fixture
def graph() -> FakeGraph:
    fake = FakeGraph()
    fake.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    fake.contents["course-101"] = "content-101"
    return fake


async def test_an_applicable_message_is_applied(graph: FakeGraph) -> None:
    queue = FakeQueue()
    assert await worker(graph, queue).process(message(), 1) is UpsertResult.CREATED
    assert not queue.sent


async def test_a_permanent_failure_is_dead_lettered_with_its_reason_and_the_original_message(
    graph: FakeGraph,
) -> None:
    queue = FakeQueue()
    body = message(learner={"email": "nobody@contoso.example"})
    outcome = await worker(graph, queue).process(body, 2)
    assert isinstance(outcome, DeadLetter)
    [letter] = [DeadLetter.model_validate_json(m) for m in queue.sent[DEADLETTER_QUEUE]]
    assert (letter.reason, letter.attempts, letter.failed_at) == ("learnerNotFound", 2, NOW)
    assert letter.message == body
    assert "nobody" not in letter.detail


async def test_graphs_error_code_is_kept_on_the_dead_letter(graph: FakeGraph) -> None:
    queue = FakeQueue()
    graph.errors["create_activity"].append(GraphError(400, "BadRequest", "Invalid property"))
    await worker(graph, queue).process(message(), 1)
    letter = DeadLetter.model_validate_json(queue.sent[DEADLETTER_QUEUE][0])
    assert (letter.reason, letter.graph_error_code) == ("graphRejected", "BadRequest")


async def test_a_message_that_is_not_a_queued_event_is_dead_lettered_not_retried(graph: FakeGraph) -> None:
    queue = FakeQueue()
    await worker(graph, queue).process("{not json", 1)
    assert DeadLetter.model_validate_json(queue.sent[DEADLETTER_QUEUE][0]).reason == "invalidMessage"


async def test_a_transient_failure_raises_so_the_queue_retries(graph: FakeGraph) -> None:
    queue = FakeQueue()
    graph.errors["get_activity"].append(GraphError(503, "ServiceUnavailable", "busy", 2))
    with pytest.raises(TransientFailure):
        await worker(graph, queue).process(message(), 1)
    assert not queue.sent
