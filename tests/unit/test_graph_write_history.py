"""Each activity row keeps its record's last Graph writes (shared.state.models.GraphWrite) for `trace`:
which request, Graph's answer or the refusal's classified reason, and the event behind it; refused and
unanswered writes too, a POST retried inline once per attempt, the newest WRITE_HISTORY only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.delivery import CourseActivityUpserter, PermanentFailure, TransientFailure
from shared.events.identity import activity_id_for
from shared.graph.errors import GraphError, GraphUnavailable
from shared.state.models import WRITE_HISTORY, ActivityState
from tests.builders import USER_ID, canonical
from tests.fakes import FakeGraph, MemoryStateStore

ACTIVITY = activity_id_for(canonical(), USER_ID, False)


class Ticking:
    """A clock that moves a second each time it is read."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 15, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def upserter(graph: FakeGraph, state: MemoryStateStore) -> CourseActivityUpserter:
    return CourseActivityUpserter(graph, state, clock=Ticking())


def history(state: MemoryStateStore) -> list[tuple[str, int | None, str | None, str]]:
    row = state.activities[ACTIVITY]
    assert [w.at for w in row.writes] == sorted(w.at for w in row.writes)
    return [(w.request, w.status, w.reason, w.cause) for w in row.writes]


async def test_a_create_then_an_update_are_kept_with_their_status_and_event(
    upserter: CourseActivityUpserter, state: MemoryStateStore
) -> None:
    await upserter.apply(canonical(eventId="a"))
    await upserter.apply(canonical(eventId="b", completionPercentage=80))
    assert history(state) == [("create", 201, None, "generic:a"), ("patch", 204, None, "generic:b")]


async def test_a_post_throttled_then_retried_inline_keeps_both_attempts(
    graph: FakeGraph, upserter: CourseActivityUpserter, state: MemoryStateStore
) -> None:
    graph.errors["create_activity"].append(GraphError(429, "tooManyRequests", "", retry_after=0.01))
    await upserter.apply(canonical(eventId="a"))
    assert history(state) == [
        ("create", 429, "graphThrottled", "generic:a"),
        ("create", 201, None, "generic:a"),
    ]


async def test_a_refused_create_is_kept_and_the_claim_released_for_the_next_attempt(
    graph: FakeGraph, upserter: CourseActivityUpserter, state: MemoryStateStore
) -> None:
    graph.unlicensed.add(USER_ID)
    with pytest.raises(PermanentFailure):
        await upserter.apply(canonical(eventId="a"))
    assert history(state) == [("create", 403, "learnerNotLicensed", "generic:a")]
    assert state.activities[ACTIVITY].claimed_at is None
    graph.unlicensed.clear()
    await upserter.apply(canonical(eventId="a"), retry=True)
    assert history(state)[-1] == ("create", 201, None, "generic:a")


async def test_an_unanswered_patch_is_kept_without_a_status(
    graph: FakeGraph, upserter: CourseActivityUpserter, state: MemoryStateStore
) -> None:
    await upserter.apply(canonical(eventId="a"))
    graph.errors["update_activity"].append(GraphUnavailable("timed out"))
    with pytest.raises(TransientFailure):
        await upserter.apply(canonical(eventId="b", completionPercentage=80))
    assert history(state)[-1] == ("patch", None, "graphUnavailable", "generic:b")


async def test_a_record_deleted_behind_the_bridges_back_shows_the_404_and_the_new_create(
    graph: FakeGraph, upserter: CourseActivityUpserter, state: MemoryStateStore
) -> None:
    await upserter.apply(canonical(eventId="a"))
    graph.activities.clear()
    await upserter.apply(canonical(eventId="b", completionPercentage=80))
    assert history(state) == [
        ("create", 201, None, "generic:a"),
        ("patch", 404, "graphNotFound", "generic:b"),
        ("create", 201, None, "generic:b"),
    ]


@pytest.mark.voiding
async def test_voiding_every_event_shows_the_delete_caused_by_the_voiding_statement(
    upserter: CourseActivityUpserter, state: MemoryStateStore
) -> None:
    await upserter.apply(canonical(eventId="a"))
    await upserter.void("generic", "a", "void-1")
    assert history(state) == [("create", 201, None, "generic:a"), ("delete", 204, None, "generic:void-1")]
    assert state.activities[ACTIVITY].graph_id is None


async def test_the_row_keeps_only_the_newest_writes(
    upserter: CourseActivityUpserter, state: MemoryStateStore
) -> None:
    for number in range(WRITE_HISTORY + 4):
        await upserter.apply(canonical(eventId=f"e{number}", completionPercentage=number + 1))
    kept = history(state)
    assert len(kept) == WRITE_HISTORY
    assert kept[-1] == ("patch", 204, None, f"generic:e{WRITE_HISTORY + 3}")
    assert ("create", 201, None, "generic:e0") not in kept


def test_the_history_is_not_part_of_the_records_state() -> None:
    """Two rows that say the same record compare equal whatever their histories (reconcile, merge)."""
    from shared.state.models import GraphWrite, noted

    row = ActivityState("a")
    assert noted(row, GraphWrite("patch", datetime(2026, 1, 1, tzinfo=UTC), 204)) == row


async def test_a_post_whose_answer_was_lost_keeps_the_failed_attempt_before_the_adoption(
    graph: FakeGraph,
    upserter: CourseActivityUpserter,
    state: MemoryStateStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The POST landed but its answer was a 503: the next look-up finds the record and adopts it."""
    original = graph.create_activity

    async def landed_then_failed(*args: Any) -> Any:
        await original(*args)
        raise GraphError(503, "serviceUnavailable", "", retry_after=0.01)

    monkeypatch.setattr(graph, "create_activity", landed_then_failed)
    await upserter.apply(canonical(eventId="a"))
    assert history(state)[0] == ("create", 503, "graphThrottled", "generic:a")
    assert state.activities[ACTIVITY].graph_id is not None
