"""Review 8: cases where the bridge, as built, still writes the wrong record or lets a source reach a
record that is not its own. Each test fails on the code it was written against."""

from __future__ import annotations

from typing import Any

import pytest

from shared.delivery import CourseActivityUpserter, PermanentFailure, UpsertResult
from shared.events.identity import derived_activity_id
from shared.events.model import CanonicalEvent, CourseStatus
from shared.graph.errors import GraphUnavailable
from shared.graph.gateway import ActivityRecord
from tests.builders import USER_ID, event
from tests.fakes import FakeGraph, MemoryStateStore


def make(source: str = "generic", **overrides: object) -> CanonicalEvent:
    return CanonicalEvent.model_validate(event(source=source, **overrides))


class LostAnswerGraph(FakeGraph):
    """Graph that applies the next POST but whose answer never reaches the bridge (a timeout after the
    record was written: the usual way a POST "fails" against a busy service)."""

    lose_next_answer = True

    async def create_activity(self, *args: Any, **kwargs: Any) -> ActivityRecord:
        created = await super().create_activity(*args, **kwargs)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise GraphUnavailable("Graph did not answer in time.")
        return created


async def apply_as_the_queue_does(upserter: CourseActivityUpserter, event: CanonicalEvent) -> UpsertResult:
    """A timed-out POST is not retried inside the invocation (it may have cost 30 s): the queue
    delivers the event again after a short back-off."""
    from shared.delivery import TransientFailure

    try:
        return await upserter.apply(event)
    except TransientFailure:
        return await upserter.apply(event)


@pytest.fixture
def graph() -> LostAnswerGraph:
    fake = LostAnswerGraph()
    fake.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    fake.users_by_upn["grace@contoso.example"] = "grace-id"
    fake.contents["course-101"] = "content-101"
    return fake


async def test_voiding_the_only_statement_deletes_the_record_even_when_its_post_answer_was_lost(
    graph: LostAnswerGraph, state: MemoryStateStore
) -> None:
    """The POST landed, its answer was lost; the bridge looks the record up again and "adopts" it,
    adding what Graph holds as a `graph` baseline entry that no voiding can withdraw. The record was
    written by this very event, so voiding the event must delete it (issue 8: "an activity whose
    every event has been voided is deleted in Graph"). Today it stays completed forever."""
    upserter = CourseActivityUpserter(graph, state)
    await apply_as_the_queue_does(
        upserter, make(eventId="done", status="completed", completionPercentage=None)
    )
    assert graph.calls.count("create_activity") == 1  # one POST, adopted after the lost answer
    await upserter.void("generic", "done", "void-1")
    assert graph.activities == {}


async def test_voiding_a_completion_moves_back_to_in_progress_even_when_the_post_answer_was_lost(
    graph: LostAnswerGraph, state: MemoryStateStore
) -> None:
    """Same path, with a progress event behind it: after the voiding the record must say what the
    remaining statement says (in progress, 40 %, no completedDateTime); the baseline keeps it completed."""
    upserter = CourseActivityUpserter(graph, state)
    await apply_as_the_queue_does(
        upserter, make(eventId="done", status="completed", completionPercentage=None)
    )
    await upserter.apply(make(eventId="progress", completionPercentage=40))
    await upserter.void("generic", "done", "void-1")
    [record] = graph.activities.values()
    assert (record.status, record.completion_percentage, record.completed_at) == (
        CourseStatus.IN_PROGRESS,
        40,
        None,
    )


async def test_a_source_with_shared_ids_cannot_reach_another_sources_derived_record(
    state: MemoryStateStore,
) -> None:
    """`sharedActivityIds` is for ids that address records shared with other *systems*; the derived
    ids of the bridge's other sources are public name-based UUIDs (fixed namespace in the code). The
    owner check compares learner and course only, never the owner's source, so a shared-id source that
    sends another source's derived id completes that source's record for the same learner and course."""
    graph = FakeGraph()
    graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    graph.contents["course-101"] = "content-101"
    upserter = CourseActivityUpserter(graph, state, shared_id_sources={"partner"})
    await upserter.apply(make(source="lrs", eventId="p-1", completionPercentage=20))
    victim = derived_activity_id("lrs", USER_ID, "course-101")
    intrusion = make(
        source="partner",
        eventId="x-1",
        status="completed",
        completionPercentage=None,
        externalCourseActivityId=victim,
    )
    with pytest.raises(PermanentFailure) as caught:
        await upserter.apply(intrusion)
    assert caught.value.reason == "activityOwnerMismatch"
    record = graph.activities[victim]
    assert (record.status, record.completion_percentage) == (CourseStatus.IN_PROGRESS, 20)


async def test_a_voiding_withdrawn_after_its_statement_is_not_lost_when_graph_throttles_the_withdrawal(
    graph: LostAnswerGraph, state: MemoryStateStore
) -> None:
    """The voiding's DELETE is throttled: the voiding goes back on the queue and, delivered again,
    withdraws the statement; a redelivery of the statement finishes a withdrawal cut short too."""
    from shared.delivery import TransientFailure
    from shared.graph.errors import GraphError

    graph.lose_next_answer = False
    upserter = CourseActivityUpserter(graph, state)
    done = make(eventId="done", status="completed", completionPercentage=None)
    await upserter.apply(done)
    graph.errors["delete_activity"].append(GraphError(429, "TooManyRequests", "slow down", 30))
    with pytest.raises(TransientFailure) as throttled:
        await upserter.void("generic", "done", "void-1")
    assert throttled.value.retry_after == 30
    assert await upserter.apply(done) is UpsertResult.DEDUPLICATED  # a redelivery of the statement
    assert graph.activities == {}, "the voided statement's only effect is still in Graph"
    assert await upserter.void("generic", "done", "void-1") is UpsertResult.VOIDED  # the deferred voiding


@pytest.mark.voiding
async def test_a_statement_voided_before_it_arrives_is_not_parked_for_its_unknown_learner(
    graph: LostAnswerGraph, state: MemoryStateStore
) -> None:
    """A voided statement asks for nothing to be written, yet the learner is resolved first: when the
    learner is not (yet) in Entra the withdrawn statement is parked, retried for 72 h and finally
    dead-lettered for an operator."""
    upserter = CourseActivityUpserter(graph, state)
    await upserter.void("generic", "gone", "void-1")
    withdrawn = make(eventId="gone", learner={"email": "left.the.company@contoso.example"})
    assert await upserter.apply(withdrawn) in (UpsertResult.UNCHANGED, UpsertResult.VOIDED)


async def test_a_learner_sent_by_object_id_who_is_not_in_entra_yet_is_parked_like_one_sent_by_email(
    graph: LostAnswerGraph, state: MemoryStateStore
) -> None:
    """A `userId` learner is never looked up: when the user does not exist (yet), the POST answers 404
    and the event is dead-lettered at once (`graphNotFound`, needs an operator), while the same person
    sent by email is parked as `learnerNotFound` and retried for 72 h."""
    graph.lose_next_answer = False
    upserter = CourseActivityUpserter(graph, state)
    with pytest.raises(PermanentFailure) as caught:
        await upserter.apply(make(learner={"userId": "0f0e0d0c-0b0a-4909-8807-060504030201"}))
    assert caught.value.reason == "learnerNotFound"


@pytest.mark.voiding
async def test_a_statement_voided_while_parked_does_not_count_when_its_course_appears(
    graph: LostAnswerGraph, state: MemoryStateStore
) -> None:
    """The completion is parked (its course is not in Viva Learning yet) after its entry joined the
    activity's log; the LRS then voids it, but the voiding finds no applied delivery (no activity id)
    and marks nothing in the log. When the course appears, the next statement creates the record with
    the voided completion in it: it stays completed until the parked statement's next retry (up to
    6 h later; never, if it is dead-lettered meanwhile)."""
    graph.lose_next_answer = False
    del graph.contents["course-101"]
    upserter = CourseActivityUpserter(graph, state)
    with pytest.raises(PermanentFailure):
        await upserter.apply(make(eventId="done", status="completed", completionPercentage=None))
    await upserter.mark("generic", "done", "failed")  # what EventWorker does before parking it
    await upserter.void("generic", "done", "void-1")
    graph.contents["course-101"] = "content-101"
    await upserter.apply(make(eventId="progress", completionPercentage=40))
    [record] = graph.activities.values()
    assert (record.status, record.completion_percentage) == (CourseStatus.IN_PROGRESS, 40)


class GatedGraph(FakeGraph):
    """Holds the first PATCH or DELETE until the test opens the gate (a slow Graph answer)."""

    def __init__(self, gated: str) -> None:
        super().__init__()
        import asyncio

        self.gated = gated
        self.gate, self.waiting = asyncio.Event(), asyncio.Event()

    async def _hold(self, name: str) -> None:
        if name == self.gated:
            self.gated = ""
            self.waiting.set()
            await self.gate.wait()

    async def update_activity(self, *args: Any, **kwargs: Any) -> None:
        await self._hold("update_activity")
        await super().update_activity(*args, **kwargs)

    async def delete_activity(self, *args: Any, **kwargs: Any) -> bool:
        await self._hold("delete_activity")
        return await super().delete_activity(*args, **kwargs)


def gated(name: str) -> GatedGraph:
    fake = GatedGraph(name)
    fake.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    fake.contents["course-101"] = "content-101"
    return fake


async def test_a_slow_stale_patch_landing_after_a_newer_one_is_written_again(state: MemoryStateStore) -> None:
    """Two events for one existing activity at once. Worker 1 folds {start, 50 %} and PATCHes slowly;
    worker 2 folds {start, 50 %, completed}, PATCHes and saves the row. Worker 1's PATCH then lands
    (Graph: inProgress), its conditional save conflicts, it re-reads the row (which holds worker 2's
    `completed`), diffs the fold against the row, not against what it just wrote to Graph, finds
    nothing to do, and stops. Graph keeps the stale inProgress; the state store says completed, so no
    later redelivery repairs it. The row's ETag guards the row, not Graph. (Two workers, i.e. two
    processes: within one, events of one activity take turns.)"""
    import asyncio

    graph = gated("update_activity")
    upserter, other_worker = CourseActivityUpserter(graph, state), CourseActivityUpserter(graph, state)
    await upserter.apply(make(eventId="start", completionPercentage=10))
    slow = asyncio.create_task(upserter.apply(make(eventId="half", completionPercentage=50)))
    await graph.waiting.wait()
    await other_worker.apply(make(eventId="done", status="completed", completionPercentage=None))
    graph.gate.set()
    await slow
    [record] = graph.activities.values()
    assert (record.status, record.completion_percentage) == (CourseStatus.COMPLETED, 100)


async def test_a_voiding_and_a_new_statement_together_leave_a_record_in_graph(
    state: MemoryStateStore,
) -> None:
    """The usual xAPI correction: void a statement and send its replacement. The voiding's worker
    folds {} (everything voided) and DELETEs slowly; meanwhile the replacement's worker PATCHes the
    record and saves the row. The DELETE then lands, the voiding worker's save conflicts, it re-reads
    the row (the replacement's state), finds nothing to change and stops: Graph has no record, the
    state store says it has one, and nothing recreates it until some later event."""
    import asyncio

    graph = gated("delete_activity")
    upserter = CourseActivityUpserter(graph, state)
    await upserter.apply(make(eventId="wrong", completionPercentage=90))
    voiding = asyncio.create_task(upserter.void("generic", "wrong", "void-1"))
    await graph.waiting.wait()
    await upserter.apply(make(eventId="fixed", completionPercentage=30))
    graph.gate.set()
    await voiding
    assert len(graph.activities) == 1, "the replacement statement's record is gone from Graph"
    [record] = graph.activities.values()
    assert (record.status, record.completion_percentage) == (CourseStatus.IN_PROGRESS, 30)
