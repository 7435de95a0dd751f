import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.delivery import CourseActivityUpserter, EventWorker, TransientFailure, UpsertResult
from shared.delivery.deadletters import DeadLetters
from shared.events.model import CanonicalEvent, CourseStatus
from shared.events.names import MAX_DEQUEUE_COUNT
from shared.events.queue import EVENTS_QUEUE, QueuedEvent, Voiding
from shared.graph.errors import GraphError
from shared.state.models import DeadLetterRecord, LetterState
from tests.builders import USER_ID, event
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def message(**overrides: object) -> str:
    queued = QueuedEvent(
        event=CanonicalEvent.model_validate(event(source="generic", **overrides)), received_at=NOW
    )
    return queued.model_dump_json(by_alias=True, exclude_none=True)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def worker(graph: FakeGraph, state: MemoryStateStore, queue: FakeQueue, clock: Clock) -> EventWorker:
    letters = DeadLetters(state, queue, timedelta(hours=72), clock)
    return EventWorker(CourseActivityUpserter(graph, state, clock=clock), letters, queue, clock)


async def test_an_applicable_message_is_applied_and_a_redelivery_deduplicated(worker: EventWorker) -> None:
    assert await worker.process(message(), 1) is UpsertResult.CREATED
    assert await worker.process(message(), 1) is UpsertResult.DEDUPLICATED


async def test_an_unknown_learner_is_parked_with_its_reason_and_the_original_message(
    worker: EventWorker, state: MemoryStateStore
) -> None:
    body = message(learner={"email": "nobody@contoso.example"})
    letter = await worker.process(body, 2)
    assert isinstance(letter, DeadLetterRecord)
    assert (letter.state, letter.reason, letter.message) == (LetterState.PARKED, "learnerNotFound", body)
    assert letter.next_attempt == NOW + timedelta(minutes=5)
    assert "nobody" not in letter.detail


async def test_parked_events_are_retried_with_growing_intervals_then_dead_lettered(
    worker: EventWorker, state: MemoryStateStore, queue: FakeQueue, clock: Clock
) -> None:
    body = message(learner={"email": "nobody@contoso.example"})
    await worker.process(body, 1)
    letters = DeadLetters(state, queue, timedelta(hours=72), clock)
    clock.now = NOW + timedelta(minutes=6)
    assert await letters.retry_due() == 1
    assert queue.sent[EVENTS_QUEUE] == [body]
    assert await letters.retry_due() == 0  # not due again yet
    await worker.process(body, 1)  # still unknown: the second attempt waits longer
    [letter] = state.letters.values()
    assert (letter.attempts, letter.next_attempt) == (2, clock.now + timedelta(minutes=10))
    clock.now = NOW + timedelta(hours=73)
    await worker.process(body, 1)
    [letter] = state.letters.values()
    assert letter.state is LetterState.DEADLETTERED
    assert "gave up" in letter.detail


async def test_a_parked_event_that_succeeds_later_leaves_no_dead_letter(
    worker: EventWorker, state: MemoryStateStore, graph: FakeGraph
) -> None:
    body = message(learner={"email": "late@contoso.example"})
    await worker.process(body, 1)
    graph.users_by_mail["late@contoso.example"] = "late-user"
    assert await worker.process(body, 1) is UpsertResult.CREATED
    assert state.letters == {}


@pytest.mark.voiding
async def test_a_parked_event_voided_meanwhile_leaves_no_dead_letter_while_its_course_is_still_unknown(
    worker: EventWorker, state: MemoryStateStore
) -> None:
    """Found by the retention state machine: its retry found it voided, tried to write the record for
    the activity's other (parked) events, failed on the unknown course, and parked the voided one again."""
    voided = message(eventId="voided", course={"externalId": "course-late"})
    await worker.process(voided, 1)
    await worker.process(message(eventId="other", course={"externalId": "course-late"}), 1)
    void = Voiding(source="generic", voided_event_id="voided", voiding_event_id="v1")
    body = QueuedEvent(void=void, received_at=NOW).model_dump_json(by_alias=True, exclude_none=True)
    assert await worker.process(body, 1) is UpsertResult.VOIDED
    assert await worker.process(voided, 1) is UpsertResult.UNCHANGED
    assert set(state.letters) == {("generic", "other")}
    assert await worker.process(voided, 1) is UpsertResult.DEDUPLICATED  # a redelivery: no letter again
    assert set(state.letters) == {("generic", "other")}


async def test_graphs_error_code_is_kept_and_the_letter_is_dead_not_parked(
    worker: EventWorker, state: MemoryStateStore, graph: FakeGraph
) -> None:
    graph.errors["create_activity"].append(GraphError(400, "BadRequest", "Invalid property"))
    await worker.process(message(), 1)
    [letter] = state.letters.values()
    assert (letter.state, letter.reason, letter.graph_error_code) == (
        LetterState.DEADLETTERED,
        "graphRejected",
        "BadRequest",
    )


async def test_a_message_that_is_not_a_queued_event_is_dead_lettered_not_retried(
    worker: EventWorker, state: MemoryStateStore
) -> None:
    await worker.process("{not json", 1)
    [letter] = state.letters.values()
    assert letter.reason == "invalidMessage"


async def test_a_poisoned_message_becomes_a_dead_letter(worker: EventWorker, state: MemoryStateStore) -> None:
    await worker.poisoned(message(), "moved by the host")
    [letter] = state.letters.values()
    assert (letter.reason, letter.state, letter.detail) == (
        "poison",
        LetterState.DEADLETTERED,
        "moved by the host",
    )


async def test_a_poisoned_message_that_is_no_queued_event_is_an_invalid_message(
    worker: EventWorker, state: MemoryStateStore
) -> None:
    await worker.poisoned("not json at all", "not base64")
    [letter] = state.letters.values()
    assert (letter.source, letter.reason, letter.message) == ("unknown", "invalidMessage", "not json at all")
    assert letter.detail.endswith("not base64")


async def test_a_replayed_poison_event_that_succeeds_removes_its_dead_letter(
    worker: EventWorker, state: MemoryStateStore
) -> None:
    """Issue 17: the poisoned event's delivery row was never marked, so its success left the letter."""
    await worker.poisoned(message(), "moved by the host")
    assert state.deliveries_by_key[("generic", "evt-1")].status == "failed"
    assert await worker.process(message(), 1) is UpsertResult.CREATED
    assert state.letters == {}


async def test_a_poisoned_copy_of_an_event_applied_already_leaves_no_dead_letter(
    worker: EventWorker, state: MemoryStateStore
) -> None:
    """A copy the host poisoned (it died past maxDequeueCount with a crashing worker) of an event
    another copy applied: a dead letter must stand for an event not applied yet, and the delivery row
    keeps saying applied."""
    assert await worker.process(message(), 1) is UpsertResult.CREATED
    assert await worker.poisoned(message(), "moved by the host") is UpsertResult.DEDUPLICATED
    assert state.letters == {}
    assert state.deliveries_by_key[("generic", "evt-1")].status == "applied"


def test_the_last_attempt_is_host_jsons_max_dequeue_count() -> None:
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    assert host["extensions"]["queues"]["maxDequeueCount"] == MAX_DEQUEUE_COUNT


async def test_a_transient_failure_on_the_last_attempt_is_dead_lettered_with_the_last_reason(
    worker: EventWorker, state: MemoryStateStore, graph: FakeGraph
) -> None:
    """The host would move it to learning-events-poison; the worker keeps it itself and completes."""
    exhausted = QueuedEvent.model_validate_json(message()).model_copy(update={"failures": 16})
    body = exhausted.model_dump_json(by_alias=True, exclude_none=True)
    for attempt in range(1, MAX_DEQUEUE_COUNT):
        graph.errors["get_activity"].append(GraphError(503, "ServiceUnavailable", "busy"))
        with pytest.raises(TransientFailure):
            await worker.process(body, attempt)
    assert state.letters == {}
    graph.errors["get_activity"].append(GraphError(503, "ServiceUnavailable", "busy"))
    letter = await worker.process(body, MAX_DEQUEUE_COUNT)
    assert isinstance(letter, DeadLetterRecord)
    assert (letter.state, letter.reason, letter.message) == (
        LetterState.DEADLETTERED,
        "retriesExhausted",
        body,
    )
    assert f"Failed {MAX_DEQUEUE_COUNT} deliveries" in letter.detail
    assert "graphTransient: Graph 503 ServiceUnavailable" in letter.detail
    assert letter.graph_error_code == "ServiceUnavailable"
    assert state.deliveries_by_key[("generic", "evt-1")].status == "failed"
    assert await worker.process(message(), 1) is UpsertResult.CREATED  # a replay removes the letter
    assert state.letters == {}


async def test_an_unexpected_error_on_the_last_attempt_is_dead_lettered_by_its_type_only(
    worker: EventWorker, state: MemoryStateStore, graph: FakeGraph
) -> None:
    graph.errors["get_activity"].append(RuntimeError("ada.lovelace@contoso.example broke it"))
    with pytest.raises(RuntimeError):
        await worker.process(message(), MAX_DEQUEUE_COUNT - 1)
    graph.errors["get_activity"].append(RuntimeError("ada.lovelace@contoso.example broke it"))
    letter = await worker.process(message(), MAX_DEQUEUE_COUNT)
    assert isinstance(letter, DeadLetterRecord)
    assert letter.reason == "retriesExhausted"
    assert letter.detail.endswith("the last: RuntimeError")
    assert "ada" not in letter.detail


async def test_a_message_past_the_last_attempt_is_still_dead_lettered_not_raised(
    worker: EventWorker, state: MemoryStateStore, graph: FakeGraph
) -> None:
    """A count above maxDequeueCount never reaches the function on the real host; if one does (another
    host), it is kept all the same."""
    graph.errors["get_activity"].append(RuntimeError("boom"))
    letter = await worker.process(message(), MAX_DEQUEUE_COUNT + 3)
    assert isinstance(letter, DeadLetterRecord)
    assert letter.reason == "retriesExhausted"


async def test_a_failure_that_names_no_wait_backs_off_on_the_queue_then_leaves_it_to_the_host(
    worker: EventWorker, state: MemoryStateStore, graph: FakeGraph, queue: FakeQueue
) -> None:
    graph.errors["get_activity"].append(GraphError(503, "ServiceUnavailable", "busy"))
    assert await worker.process(message(), 1) is None
    [(again, delay)] = queue.delayed[EVENTS_QUEUE]
    assert 2 <= delay <= 2.5
    assert QueuedEvent.model_validate_json(again).failures == 1
    exhausted = QueuedEvent.model_validate_json(again).model_copy(update={"failures": 16})
    graph.errors["get_activity"].append(GraphError(503, "ServiceUnavailable", "busy"))
    with pytest.raises(TransientFailure):  # two hours of backing off: the host's retries, then poison
        await worker.process(exhausted.model_dump_json(by_alias=True, exclude_none=True), 1)
    assert state.letters == {}


async def test_throttling_puts_the_event_back_with_graphs_delay_outside_the_dequeue_budget(
    worker: EventWorker, state: MemoryStateStore, graph: FakeGraph, queue: FakeQueue
) -> None:
    graph.errors["get_activity"].append(GraphError(429, "TooManyRequests", "slow down", 120))
    assert await worker.process(message(), 5) is None  # completes: nothing for the host to retry
    [(again, delay)] = queue.delayed[EVENTS_QUEUE]
    assert 120 <= delay <= 150  # Graph's wait, and a little jitter
    assert QueuedEvent.model_validate_json(again).deferrals == 1
    assert state.letters == {}
    assert await worker.process(again, 1) is UpsertResult.CREATED  # a fresh message, a fresh budget


async def test_events_throttled_together_do_not_come_back_together(
    worker: EventWorker, graph: FakeGraph, queue: FakeQueue
) -> None:
    """A storm tells every event in flight the same Retry-After: their deferrals are spread over a
    quarter of it (whole seconds apart, as the queue counts), so they do not return as one wave."""
    for n in range(40):
        graph.errors["get_activity"].append(GraphError(429, "TooManyRequests", "slow down", 60))
        assert await worker.process(message(eventId=f"storm-{n}"), 1) is None
    delays = [delay for _, delay in queue.delayed[EVENTS_QUEUE]]
    assert all(60 <= delay <= 75 for delay in delays)
    assert len({round(delay) for delay in delays}) >= 8


async def test_an_activity_being_created_elsewhere_waits_for_the_lease_on_the_queue(
    worker: EventWorker, state: MemoryStateStore, queue: FakeQueue, clock: Clock
) -> None:
    from shared.events.identity import activity_id_for, owner_of

    first = CanonicalEvent.model_validate(event(source="generic"))
    activity_id = activity_id_for(first, USER_ID)
    claim = await state.claim_activity(activity_id, owner_of(first, USER_ID))  # a worker that crashed
    await state.save_activity(replace(claim, claimed_at=NOW - timedelta(seconds=20)))
    assert await worker.process(message(eventId="next"), 4) is None
    [(_, delay)] = queue.delayed[EVENTS_QUEUE]
    assert 5 <= delay <= 9  # look again soon (the lease has 40 s left), plus jitter, outside the budget
    assert state.letters == {}
    clock.now = NOW + timedelta(seconds=41)
    assert await worker.process(message(eventId="next"), 1) is UpsertResult.CREATED


async def test_voiding_a_completion_moves_the_record_back_and_clears_its_date(
    worker: EventWorker, graph: FakeGraph
) -> None:
    await worker.process(message(eventId="progress"), 1)
    await worker.process(message(eventId="done", status="completed", completionPercentage=None), 1)
    void = Voiding(source="generic", voided_event_id="done", voiding_event_id="v1")
    body = QueuedEvent(void=void, received_at=NOW).model_dump_json(by_alias=True, exclude_none=True)
    assert await worker.process(body, 1) is UpsertResult.VOIDED
    [record] = graph.activities.values()
    assert (record.status, record.completion_percentage, record.completed_at) == (
        CourseStatus.IN_PROGRESS,
        40,
        None,
    )


async def test_voiding_the_only_event_deletes_the_record(worker: EventWorker, graph: FakeGraph) -> None:
    await worker.process(message(eventId="done", status="completed", completionPercentage=None), 1)
    void = Voiding(source="generic", voided_event_id="done", voiding_event_id="v1")
    body = QueuedEvent(void=void, received_at=NOW).model_dump_json(by_alias=True, exclude_none=True)
    assert await worker.process(body, 1) is UpsertResult.VOIDED
    assert graph.activities == {}
    assert await worker.process(message(eventId="again"), 1) is UpsertResult.CREATED  # created anew


async def test_replaying_a_dead_letter_twice_sends_it_once(
    worker: EventWorker, state: MemoryStateStore, queue: FakeQueue, clock: Clock
) -> None:
    await worker.process("{broken", 1)
    [letter] = state.letters.values()
    letters = DeadLetters(state, queue, timedelta(hours=72), clock)
    assert await letters.replay(letter) is True
    [again] = state.letters.values()
    assert await letters.replay(again) is False
    assert len(queue.sent[EVENTS_QUEUE]) == 1


async def test_an_assignment_queued_while_assignments_are_off_is_dead_lettered_then_replayed_once_on(
    graph: FakeGraph, state: MemoryStateStore, queue: FakeQueue, clock: Clock
) -> None:
    """A deployment without assignments writes none from its queue (Graph would take it: the Create
    and Delete pages accept LearningSelfInitiatedCourse.ReadWrite.All too): an assignment statement or
    withdrawal is kept as a dead letter, `assignmentsDisabled`, with its fix, and nothing is written or
    logged for it; replayed once assignments are on, it lands as an assignment."""
    from shared.delivery.worker import ASSIGNMENTS_DISABLED

    letters = DeadLetters(state, queue, timedelta(hours=72), clock)
    upserter = CourseActivityUpserter(graph, state, clock=clock)
    off = EventWorker(upserter, letters, queue, clock, assignments_enabled=False)
    assigned = message(
        eventId="a1", status="notStarted", completionPercentage=None, assignment={"type": "required"}
    )
    withdrawn = message(eventId="a2", assignment={"withdrawn": True})
    for body in (assigned, withdrawn):
        letter = await off.process(body, 1)
        assert isinstance(letter, DeadLetterRecord)
        assert (letter.state, letter.reason) == (LetterState.DEADLETTERED, ASSIGNMENTS_DISABLED)
        assert "replay --reason assignmentsDisabled" in letter.detail
    assert graph.activities == {}
    assert await off.process(message(eventId="p1"), 1) is UpsertResult.CREATED  # progress still passes
    [record] = graph.activities.values()
    assert not record.is_assignment
    on = EventWorker(upserter, letters, queue, clock)
    [first] = [letter for letter in state.letters.values() if letter.event_id == "a1"]
    assert await letters.replay(first)
    await on.process(queue.sent[EVENTS_QUEUE][-1], 1)
    [record] = graph.activities.values()
    assert record.is_assignment
    assert [letter.event_id for letter in state.letters.values()] == ["a2"]


async def test_a_type_switch_whose_create_is_refused_keeps_the_event_and_its_replay_restores_the_completion(
    worker: EventWorker, graph: FakeGraph, state: MemoryStateStore, queue: FakeQueue, clock: Clock
) -> None:
    """Self-initiated and completed, then assigned: the record is deleted (Graph cannot change its
    type) and created again. When Graph refuses that creation for good, the learner's completed record
    is gone from Graph for now, but not silently: the assignment is kept as a dead letter with Graph's
    reason, and its replay (the activity's log holds the completion) creates the assignment completed."""
    done = message(eventId="done", status="completed", completionPercentage=100)
    assert await worker.process(done, 1) is UpsertResult.CREATED
    graph.errors["create_activity"].append(GraphError(400, "badRequest", "Input field notes is invalid"))
    assigned = message(
        eventId="a1",
        occurredAt="2026-11-25T09:00:00Z",
        status="notStarted",
        completionPercentage=None,
        assignment={"type": "required"},
    )
    letter = await worker.process(assigned, 1)
    assert isinstance(letter, DeadLetterRecord)
    assert (letter.state, letter.reason, letter.message) == (
        LetterState.DEADLETTERED,
        "graphRejected",
        assigned,
    )
    assert graph.activities == {}  # deleted, and not created again yet
    letters = DeadLetters(state, queue, timedelta(hours=72), clock)
    assert await letters.replay(letter)
    assert await worker.process(queue.sent[EVENTS_QUEUE][-1], 1) is not None
    [record] = graph.activities.values()
    assert record.is_assignment
    assert record.status is CourseStatus.COMPLETED
    assert record.completed_at is not None
    assert state.letters == {}
