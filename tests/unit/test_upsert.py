import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.delivery import CourseActivityUpserter, PermanentFailure, TransientFailure, UpsertResult
from shared.events.identity import activity_id_for
from shared.events.model import CanonicalEvent, CourseStatus
from shared.graph.errors import GraphError, GraphUnavailable
from shared.graph.gateway import ActivityRecord, ActivityWrite
from tests.builders import USER_ID, canonical, event
from tests.fakes import FakeGraph, MemoryStateStore

make = canonical  # a generic-source event, fields overridden


@pytest.fixture
def graph() -> FakeGraph:
    fake = FakeGraph()
    fake.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    fake.users_by_upn["grace@contoso.example"] = "grace-id"
    fake.contents["course-101"] = "content-101"
    return fake


@pytest.fixture
def upserter(graph: FakeGraph, state: MemoryStateStore) -> CourseActivityUpserter:
    return CourseActivityUpserter(graph, state)


def the_record(graph: FakeGraph) -> ActivityRecord:
    [record] = graph.activities.values()
    return record


async def test_a_first_event_creates_the_course_activity(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    assert await upserter.apply(make(startedAt="2026-11-19T09:00:00Z")) is UpsertResult.CREATED
    record = the_record(graph)
    assert (record.learner_user_id, record.learning_content_id) == (USER_ID, "content-101")
    assert (record.status, record.completion_percentage) == (CourseStatus.IN_PROGRESS, 40)
    assert record.started_at == datetime(2026, 11, 19, 9, tzinfo=UTC)


async def test_completion_sets_100_percent_and_the_completion_time(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make(status="completed", completionPercentage=None))
    assert the_record(graph).completion_percentage == 100
    assert the_record(graph).completed_at == datetime(2026, 11, 20, 14, 3, tzinfo=UTC)


async def test_a_redelivered_event_costs_no_graph_call(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make())
    graph.calls.clear()
    assert await upserter.apply(make()) is UpsertResult.DEDUPLICATED
    assert graph.calls == []


async def test_the_steady_state_is_one_patch_per_event(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make(eventId="a"))
    graph.calls.clear()
    assert await upserter.apply(make(eventId="b", completionPercentage=80)) is UpsertResult.UPDATED
    assert graph.calls == ["update_activity"]


async def test_progress_after_completion_leaves_the_record_completed(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    done = make(
        eventId="done", status="completed", completionPercentage=None, startedAt="2026-11-01T00:00:00Z"
    )
    await upserter.apply(done)
    late = make(eventId="late", occurredAt="2026-11-19T10:00:00Z", completionPercentage=40)
    assert await upserter.apply(late) is UpsertResult.UNCHANGED
    assert (the_record(graph).status, the_record(graph).completion_percentage) == (
        CourseStatus.COMPLETED,
        100,
    )


async def test_percentage_never_decreases_but_the_earliest_start_wins(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make(eventId="a", completionPercentage=60, startedAt="2026-11-10T00:00:00Z"))
    await upserter.apply(make(eventId="b", completionPercentage=30, startedAt="2026-11-01T00:00:00Z"))
    assert the_record(graph).completion_percentage == 60
    assert the_record(graph).started_at == datetime(2026, 11, 1, tzinfo=UTC)


async def test_a_shared_record_already_in_graph_is_adopted_as_a_floor_never_duplicated(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    shared = CourseActivityUpserter(graph, state, shared_id_sources={"generic"})
    await graph.create_activity("lms-7", USER_ID, "content-101", _write(CourseStatus.IN_PROGRESS, 70))
    graph.calls.clear()
    await shared.apply(make(eventId="b", completionPercentage=20, externalCourseActivityId="lms-7"))
    assert "create_activity" not in graph.calls
    assert the_record(graph).completion_percentage == 70  # another system's record: its state is a floor


async def test_the_bridges_own_record_found_after_a_lost_answer_is_brought_in_line(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    first = make(eventId="a", completionPercentage=20)
    await graph.create_activity(
        activity_id_for(first, USER_ID), USER_ID, "content-101", _write(CourseStatus.IN_PROGRESS, 70)
    )
    graph.calls.clear()
    await upserter.apply(first)
    assert "create_activity" not in graph.calls
    assert the_record(graph).completion_percentage == 20  # what the events say, nothing else


async def test_two_workers_creating_one_activity_create_it_once(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    workers = [CourseActivityUpserter(graph, state), CourseActivityUpserter(graph, state)]
    events = [make(eventId="a", completionPercentage=10), make(eventId="b", completionPercentage=90)]
    outcomes = await asyncio.gather(
        *(w.apply(e) for w, e in zip(workers, events, strict=True)), return_exceptions=True
    )
    assert graph.calls.count("create_activity") == 1
    assert len(graph.activities) == 1
    retried = [o for o in outcomes if isinstance(o, TransientFailure)]
    for failure in retried:  # the loser is retried by the queue and then updates
        assert failure.reason == "activityBeingCreated"
        await workers[1].apply(events[1])
    assert the_record(graph).completion_percentage == 90


async def test_email_falls_back_to_the_user_principal_name(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make(learner={"email": "grace@contoso.example"}))
    assert the_record(graph).learner_user_id == "grace-id"


async def test_found_learners_are_cached_per_worker(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make(eventId="a"))
    graph.contents["course-102"] = "content-102"
    await upserter.apply(make(eventId="b", course={"externalId": "course-102"}))
    assert graph.calls.count("find_user_id_by:mail") == 1


async def test_an_unknown_learner_is_permanent_and_retried_later(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    unknown = make(learner={"email": "nobody@contoso.example"})
    with pytest.raises(PermanentFailure) as caught:
        await upserter.apply(unknown)
    assert caught.value.reason == "learnerNotFound"
    assert "nobody" not in caught.value.detail  # personal data stays out of reasons
    graph.users_by_mail["nobody@contoso.example"] = "new-user"
    assert await upserter.apply(unknown) is UpsertResult.CREATED


async def test_unknown_content_is_permanent(upserter: CourseActivityUpserter) -> None:
    with pytest.raises(PermanentFailure) as caught:
        await upserter.apply(make(course={"externalId": "course-999"}))
    assert caught.value.reason == "contentNotFound"


async def test_an_account_learner_needs_a_mapping(upserter: CourseActivityUpserter) -> None:
    with pytest.raises(PermanentFailure) as caught:
        await upserter.apply(make(learner={"account": {"homePage": "https://lms", "name": "u1"}}))
    assert caught.value.reason == "learnerNotResolvable"


async def test_voiding_withdraws_exactly_the_voided_events_effect(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make(eventId="progress", completionPercentage=40))
    await upserter.apply(make(eventId="done", status="completed", completionPercentage=None))
    assert the_record(graph).status is CourseStatus.COMPLETED
    assert await upserter.void("generic", "done", "void-1") is UpsertResult.VOIDED
    record = the_record(graph)
    assert (record.status, record.completion_percentage, record.completed_at) == (
        CourseStatus.IN_PROGRESS,
        40,
        None,
    )


async def test_a_void_that_arrives_first_keeps_its_statement_from_counting(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.void("generic", "done", "void-1")
    await upserter.apply(make(eventId="progress", completionPercentage=40))
    await upserter.apply(make(eventId="done", status="completed", completionPercentage=None))
    assert the_record(graph).status is CourseStatus.IN_PROGRESS


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (GraphError(429, "TooManyRequests", "slow down", 5), TransientFailure, "graphThrottled"),
        (GraphError(429, "TooManyRequests", "slow down"), TransientFailure, "graphThrottled"),
        (GraphError(503, "ServiceUnavailable", "busy", 30), TransientFailure, "graphThrottled"),
        (GraphError(503, "ServiceUnavailable", "busy"), TransientFailure, "graphTransient"),
        (GraphUnavailable("timeout"), TransientFailure, "graphUnavailable"),
        (GraphError(400, "BadRequest", "Invalid property"), PermanentFailure, "graphRejected"),
        (GraphError(403, "Forbidden", "sync disabled"), PermanentFailure, "graphForbidden"),
    ],
)
async def test_graph_failures_are_classified_for_the_queue(
    graph: FakeGraph, upserter: CourseActivityUpserter, error: Exception, kind: type[Exception], reason: str
) -> None:
    graph.errors["get_activity"].append(error)
    with pytest.raises(kind) as caught:
        await upserter.apply(make())
    assert caught.value.reason == reason  # type: ignore[attr-defined]


def _write(status: CourseStatus, percentage: int) -> ActivityWrite:
    return ActivityWrite(status=status, completion_percentage=percentage)


async def test_a_throttled_post_waits_as_asked_and_looks_up_before_posting_again(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    graph.errors["create_activity"].append(GraphError(429, "TooManyRequests", "slow down", retry_after=0.01))
    assert await upserter.apply(make()) is UpsertResult.CREATED
    assert graph.calls.count("get_activity") == 2  # the second POST came after a second lookup
    assert len(graph.activities) == 1


@pytest.mark.voiding
async def test_a_statement_voided_before_it_arrives_creates_no_record(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.void("generic", "only", "void-1")
    assert await upserter.apply(make(eventId="only")) is UpsertResult.UNCHANGED
    assert graph.activities == {}
    assert await upserter.apply(make(eventId="next", completionPercentage=30)) is UpsertResult.CREATED


async def test_a_long_retry_after_is_given_back_to_the_queue_not_slept_through(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    graph.errors["create_activity"].append(GraphError(429, "TooManyRequests", "slow down", retry_after=120))
    with pytest.raises(TransientFailure) as caught:
        await upserter.apply(make())
    assert (caught.value.reason, caught.value.retry_after) == ("graphThrottled", 120)
    assert await upserter.apply(make()) is UpsertResult.CREATED  # the claim was released for the retry


async def test_an_event_that_says_only_not_started_creates_nothing(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    assert (
        await upserter.apply(make(status="notStarted", completionPercentage=None)) is UpsertResult.UNCHANGED
    )
    assert graph.activities == {}
    assert await upserter.apply(make(eventId="started")) is UpsertResult.CREATED


async def test_one_person_by_email_then_by_upn_is_one_record(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    graph.users_by_upn["ada.lovelace@contoso.example"] = USER_ID
    await upserter.apply(make(eventId="a", learner={"email": "ada.lovelace@contoso.example"}))
    await upserter.apply(
        make(eventId="b", learner={"upn": "ada.lovelace@contoso.example"}, completionPercentage=70)
    )
    assert the_record(graph).completion_percentage == 70


async def test_an_explicit_id_of_another_source_addresses_another_record(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make(status="completed", completionPercentage=None, externalCourseActivityId="x-1"))
    intruder = CanonicalEvent.model_validate(
        event(source="other", eventId="evt-1", externalCourseActivityId="x-1", completionPercentage=5)
    )
    await upserter.apply(intruder)
    statuses = sorted(str(r.status) for r in graph.activities.values())
    assert statuses == ["completed", "inProgress"]  # the first record untouched


async def test_an_explicit_id_reused_for_another_learner_is_refused_and_changes_nothing(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make(eventId="a", externalCourseActivityId="x-1", completionPercentage=40))
    other_learner = make(
        eventId="b",
        externalCourseActivityId="x-1",
        learner={"email": "grace@contoso.example"},
        status="completed",
        completionPercentage=None,
    )
    with pytest.raises(PermanentFailure) as caught:
        await upserter.apply(other_learner)
    assert caught.value.reason == "activityOwnerMismatch"
    assert (the_record(graph).status, the_record(graph).completion_percentage) == (
        CourseStatus.IN_PROGRESS,
        40,
    )


async def test_a_record_in_graph_of_another_learner_is_not_adopted(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    shared = CourseActivityUpserter(graph, state, shared_id_sources={"generic"})
    await graph.create_activity("shared-1", "grace-id", "content-101", _write(CourseStatus.COMPLETED, 100))
    with pytest.raises(PermanentFailure) as caught:
        await shared.apply(make(externalCourseActivityId="shared-1", completionPercentage=10))
    assert caught.value.reason == "activityOwnerMismatch"
    assert graph.activities["shared-1"].status is CourseStatus.COMPLETED


async def test_a_record_deleted_behind_the_bridges_back_is_created_again(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(make(eventId="a"))
    graph.activities.clear()
    assert await upserter.apply(make(eventId="b", completionPercentage=70)) is UpsertResult.CREATED
    assert the_record(graph).completion_percentage == 70


@pytest.mark.voiding
async def test_a_voiding_that_arrives_while_its_statement_is_written_is_not_lost(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    gate, creating = asyncio.Event(), asyncio.Event()

    class SlowGraph(FakeGraph):
        async def create_activity(self, *args: Any, **kwargs: Any) -> ActivityRecord:
            creating.set()
            await gate.wait()
            return await super().create_activity(*args, **kwargs)

    slow = SlowGraph()
    slow.__dict__.update({k: v for k, v in graph.__dict__.items() if k != "calls"})
    upserter = CourseActivityUpserter(slow, state)
    applying = asyncio.create_task(
        upserter.apply(make(eventId="done", status="completed", completionPercentage=None))
    )
    await creating.wait()
    with pytest.raises(TransientFailure) as waiting:  # the record is being created: the voiding waits
        await upserter.void("generic", "done", "void-1")
    assert waiting.value.reason == "activityBeingCreated"
    gate.set()
    await applying
    assert await upserter.void("generic", "done", "void-1") is UpsertResult.VOIDED  # back from the queue
    assert slow.activities == {}  # the statement's only effect was withdrawn after all


class CountingStore(MemoryStateStore):
    """Counts the requests a Table store would make (one per call)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name in {
            "delivery",
            "save_delivery",
            "insert_delivery",
            "void_delivery",
            "activity",
            "load",
            "claim_activity",
            "save_activity",
            "add_event",
            "void_event",
            "events",
        }:
            super().__getattribute__("requests").append(name)
        return attribute


async def test_an_update_from_a_source_that_cannot_void_costs_three_state_requests(graph: FakeGraph) -> None:
    store = CountingStore()
    upserter = CourseActivityUpserter(graph, store, voiding_sources=())
    await upserter.apply(make(eventId="first", completionPercentage=10))
    store.requests.clear()
    assert await upserter.apply(make(eventId="second", completionPercentage=50)) is UpsertResult.UPDATED
    assert store.requests == ["load", "save_activity", "insert_delivery"]
    store.requests.clear()
    assert await upserter.apply(make(eventId="second", completionPercentage=50)) is UpsertResult.DEDUPLICATED
    assert "save_activity" not in store.requests  # a redelivery writes nothing to the activity
    [record] = graph.activities.values()
    assert record.completion_percentage == 50


async def test_on_the_lean_path_a_voiding_found_at_insert_withdraws_the_entry(graph: FakeGraph) -> None:
    store = MemoryStateStore()
    upserter = CourseActivityUpserter(graph, store, voiding_sources=())
    await upserter.apply(make(eventId="first", completionPercentage=10))
    await store.void_delivery("generic", "second", "void-1")  # recorded before the event is applied
    await upserter.apply(make(eventId="second", completionPercentage=50))
    [record] = graph.activities.values()
    assert record.completion_percentage == 10
    delivery = await store.delivery("generic", "second")
    assert delivery is not None
    assert (delivery.status, delivery.voided_by) == ("applied", "void-1")


async def test_on_the_lean_path_a_redelivery_with_other_content_changes_nothing(graph: FakeGraph) -> None:
    upserter = CourseActivityUpserter(graph, MemoryStateStore(), voiding_sources=())
    await upserter.apply(make(eventId="first", completionPercentage=10))
    assert await upserter.apply(make(eventId="first", completionPercentage=90)) is UpsertResult.DEDUPLICATED
    [record] = graph.activities.values()
    assert record.completion_percentage == 10


async def test_events_for_one_activity_that_arrive_together_cost_one_graph_write(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    upserter = CourseActivityUpserter(graph, state)
    await upserter.apply(make(eventId="first", completionPercentage=10))
    graph.calls.clear()
    together = [make(eventId=f"batch-{n}", completionPercentage=20 + 10 * n) for n in range(5)]
    results = await asyncio.gather(*(upserter.apply(event) for event in together))
    assert graph.calls.count("update_activity") == 1
    assert set(results) == {UpsertResult.UPDATED}
    [record] = graph.activities.values()
    assert record.completion_percentage == 60
    assert {e.event_id for e in await state.events(next(iter(state.activities)))} >= {
        e.event_id for e in together
    }


async def test_a_failure_of_a_group_reaches_every_event_in_it(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    upserter = CourseActivityUpserter(graph, state)
    await upserter.apply(make(eventId="first", completionPercentage=10))
    graph.errors["update_activity"].append(GraphError(429, "TooManyRequests", "slow down", retry_after=120))
    together = [make(eventId=f"batch-{n}", completionPercentage=20 + n) for n in range(3)]
    outcomes = await asyncio.gather(*(upserter.apply(event) for event in together), return_exceptions=True)
    assert all(isinstance(o, TransientFailure) and o.reason == "graphThrottled" for o in outcomes)
