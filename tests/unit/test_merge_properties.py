"""The merge rules as properties: whatever the order and however often events arrive, the Graph
record ends as if each event had been applied once, in time order; voiding withdraws exactly one.
No record ever says notStarted (a self-initiated course is inProgress or completed)."""

import asyncio
import os
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.delivery import CourseActivityUpserter
from shared.events.model import CanonicalEvent, CourseStatus
from shared.graph.gateway import ActivityRecord
from tests.builders import USER_ID
from tests.fakes import FakeGraph, MemoryStateStore

BASE = datetime(2026, 11, 1, tzinfo=UTC)


@st.composite
def events(draw: st.DrawFn) -> list[CanonicalEvent]:
    count = draw(st.integers(min_value=1, max_value=8))
    made = []
    for index in range(count):
        status = draw(st.sampled_from(["notStarted", "inProgress", "completed"]))
        percentage = None
        if status == "inProgress":
            percentage = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=100)))
        occurred = BASE + timedelta(hours=draw(st.integers(min_value=0, max_value=500)))
        body = {
            "eventId": f"e{index}",
            "source": "lms",
            "occurredAt": occurred.isoformat(),
            "learner": {"userId": USER_ID},
            "course": {"externalId": "course-101"},
            "status": status,
            "completionPercentage": percentage,
        }
        if draw(st.booleans()) and status != "notStarted":
            body["startedAt"] = (occurred - timedelta(hours=draw(st.integers(0, 48)))).isoformat()
        made.append(CanonicalEvent.model_validate(body))
    return made


def final_record(deliveries: list[CanonicalEvent], voids: tuple[str, ...] = ()) -> ActivityRecord | None:
    graph = FakeGraph()
    graph.users_by_upn["ada.lovelace@contoso.example"] = USER_ID
    graph.contents["course-101"] = "content-101"
    upserter = CourseActivityUpserter(graph, MemoryStateStore())

    async def run() -> None:
        for event in deliveries:
            await upserter.apply(event)
        for voided in voids:
            await upserter.void("lms", voided, f"void-{voided}")

    asyncio.run(run())
    records = list(graph.activities.values())
    assert len(records) <= 1
    assert all(r.status is not CourseStatus.NOT_STARTED for r in records)
    return records[0] if records else None


def comparable(record: ActivityRecord | None) -> tuple[object, ...] | None:
    if record is None:
        return None
    return (record.status, record.completion_percentage, record.started_at, record.completed_at)


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")), deadline=None)
@given(events(), st.data())
def test_any_order_and_duplication_ends_in_the_time_ordered_record(
    batch: list[CanonicalEvent], data: st.DataObject
) -> None:
    in_time_order = sorted(batch, key=lambda e: e.occurred_at)
    redelivered = batch + data.draw(st.lists(st.sampled_from(batch), max_size=10))
    shuffled = data.draw(st.permutations(redelivered))
    assert comparable(final_record(shuffled)) == comparable(final_record(in_time_order))


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "100")), deadline=None)
@given(events(), st.data())
def test_voiding_an_event_is_as_if_it_had_never_come(
    batch: list[CanonicalEvent], data: st.DataObject
) -> None:
    voided = data.draw(st.sampled_from(batch))
    others = [e for e in batch if e.event_id != voided.event_id]
    with_void = final_record(data.draw(st.permutations(batch)), voids=(voided.event_id,))
    without = final_record(others)
    # Nothing else said (or only "not started"): no record at all, deleted if it had been written.
    assert comparable(with_void) == comparable(without)
    assert with_void is None or with_void.status is not CourseStatus.NOT_STARTED
