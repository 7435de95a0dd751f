"""The merge rules as properties: whatever the order and however often events arrive, the Graph
record ends as if each event had been applied once, in time order; voiding withdraws exactly one.
No self-initiated record ever says notStarted (a self-initiated course is inProgress or completed).

With assignments (issue 18): the newest assignment statement wins for type, due date and notes, a
withdrawal by event time; the assigner is the newest one named (and found in Entra) since the last
withdrawal, a statement without one (or with one who left) keeps it; a completion stays a completion
through assignments and withdrawals; one record per learner and course whatever its type went through."""

import asyncio
import os
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.delivery import CourseActivityUpserter
from shared.delivery.merge import RECORD_FIELDS
from shared.events.model import CanonicalEvent, CourseStatus
from shared.graph.gateway import ActivityRecord
from tests.builders import USER_ID
from tests.fakes import FakeGraph, MemoryStateStore

BASE = datetime(2026, 11, 1, tzinfo=UTC)
#: Assigners Entra knows, by UPN; any other address is someone who left.
ASSIGNERS = {
    "grace@contoso.example": "7e2d9b4c-3a1f-4c8e-b6d2-0f9e8d7c6b5a",
    "alan@contoso.example": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
}


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
    graph.users_by_upn.update(ASSIGNERS)
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
    assert all(r.status is not CourseStatus.NOT_STARTED or r.is_assignment for r in records)
    return records[0] if records else None


def comparable(record: ActivityRecord | None) -> tuple[object, ...] | None:
    return None if record is None else tuple(getattr(record, name) for name in RECORD_FIELDS)


def redelivered_in_any_order(batch: list[CanonicalEvent], data: st.DataObject) -> list[CanonicalEvent]:
    """The batch with some events delivered again, all shuffled: what a queue may hand the workers."""
    redelivered = batch + data.draw(st.lists(st.sampled_from(batch), max_size=10))
    return data.draw(st.permutations(redelivered))


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")), deadline=None)
@given(events(), st.data())
def test_any_order_and_duplication_ends_in_the_time_ordered_record(
    batch: list[CanonicalEvent], data: st.DataObject
) -> None:
    in_time_order = sorted(batch, key=lambda e: e.occurred_at)
    shuffled = redelivered_in_any_order(batch, data)
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


@st.composite
def assignment_events(draw: st.DrawFn) -> list[CanonicalEvent]:
    """Progress events and assignment statements (assigned, moved, withdrawn) for one record, some at
    the same instant (ties are broken by event id, never by arrival)."""
    count = draw(st.integers(min_value=1, max_value=8))
    made = []
    for index in range(count):
        status = draw(st.sampled_from(["notStarted", "inProgress", "completed"]))
        percentage = None
        if status == "inProgress":
            percentage = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=100)))
        occurred = BASE + timedelta(hours=draw(st.integers(min_value=0, max_value=6)))
        body: dict[str, object] = {
            "eventId": f"e{index}",
            "source": "lms",
            "occurredAt": occurred.isoformat(),
            "learner": {"userId": USER_ID},
            "course": {"externalId": "course-101"},
            "status": status,
            "completionPercentage": percentage,
        }
        kind = draw(st.sampled_from(["none", "none", "assigned", "withdrawn"]))
        if kind == "withdrawn":
            body["assignment"] = {"withdrawn": True}
        elif kind == "assigned":
            assignment: dict[str, object] = {"type": draw(st.sampled_from(["required", "recommended"]))}
            if draw(st.booleans()):
                assignment["dueAt"] = (occurred + timedelta(days=draw(st.integers(1, 30)))).isoformat()
            if draw(st.booleans()):
                assignment["notes"] = draw(st.sampled_from(["Before the audit.", "Optional reading."]))
            if draw(st.booleans()):
                assignment["assignedAt"] = (occurred - timedelta(hours=1)).isoformat()
            assigner = draw(st.sampled_from([None, None, *ASSIGNERS, "gone@contoso.example"]))
            if assigner is not None:
                assignment["assigner"] = {"upn": assigner}
            body["assignment"] = assignment
        made.append(CanonicalEvent.model_validate(body))
    return made


def _newest_statement(batch: list[CanonicalEvent]) -> CanonicalEvent | None:
    stated = [e for e in batch if e.assignment is not None]
    return max(stated, key=lambda e: (e.occurred_at, e.source, e.event_id), default=None)


def _expected_assigner(batch: list[CanonicalEvent]) -> str | None:
    """The model: the newest statement since the last withdrawal that names an assigner Entra knows."""
    stated = sorted(
        (e for e in batch if e.assignment is not None), key=lambda e: (e.occurred_at, e.source, e.event_id)
    )
    assigner = None
    for event in stated:
        assert event.assignment is not None
        if event.assignment.withdrawn:
            assigner = None
        elif event.assignment.assigner is not None and event.assignment.assigner.upn in ASSIGNERS:
            assigner = ASSIGNERS[event.assignment.assigner.upn]
    return assigner


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")), deadline=None)
@given(assignment_events(), st.data())
def test_assignments_in_any_order_and_duplication_end_in_the_time_ordered_record(
    batch: list[CanonicalEvent], data: st.DataObject
) -> None:
    in_time_order = sorted(batch, key=lambda e: (e.occurred_at, e.event_id))
    shuffled = redelivered_in_any_order(batch, data)
    reordered, ordered = final_record(shuffled), final_record(in_time_order)
    assert comparable(reordered) == comparable(ordered)
    assert (reordered and reordered.assigner_user_id) == (ordered and ordered.assigner_user_id)


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")), deadline=None)
@given(assignment_events(), st.data())
def test_the_newest_statement_decides_the_assignment_and_a_completion_stays(
    batch: list[CanonicalEvent], data: st.DataObject
) -> None:
    record = final_record(data.draw(st.permutations(batch)))
    newest = _newest_statement(batch)
    assigned = newest is not None and newest.assignment is not None and not newest.assignment.withdrawn
    progress = any(e.status is not CourseStatus.NOT_STARTED for e in batch)
    if not assigned and not progress:
        assert record is None
        return
    assert record is not None
    assert record.is_assignment == assigned
    if assigned:
        assert newest is not None
        assert newest.assignment is not None
        assert record.assignment_type == newest.assignment.type
        assert record.due_at == newest.assignment.due_utc()
        assert record.notes == newest.assignment.notes
        assert record.assigner_user_id == _expected_assigner(batch)
        assert record.started_at is None
    if any(e.status is CourseStatus.COMPLETED for e in batch):
        assert record.status is CourseStatus.COMPLETED
        assert record.completed_at is not None


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "100")), deadline=None)
@given(assignment_events(), st.data())
def test_voiding_an_assignment_statement_is_as_if_it_had_never_come(
    batch: list[CanonicalEvent], data: st.DataObject
) -> None:
    voided = data.draw(st.sampled_from(batch))
    others = [e for e in batch if e.event_id != voided.event_id]
    with_void = final_record(data.draw(st.permutations(batch)), voids=(voided.event_id,))
    assert comparable(with_void) == comparable(final_record(others))
