"""Assignments through the upserter (issue 18): one record per learner and course, a learningAssignment
while assigned; what each assignment event costs in Graph calls."""

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.delivery import CourseActivityUpserter, UpsertResult
from shared.events.model import AssignmentType, CourseStatus
from shared.graph.gateway import ActivityRecord
from tests.builders import canonical
from tests.fakes import FakeGraph, MemoryStateStore

DUE = "2026-12-31T17:00:00Z"


@pytest.fixture
def graph(graph: FakeGraph) -> FakeGraph:
    """The unit conftest's Graph, knowing Grace (an assigner) too."""
    graph.users_by_upn["grace@contoso.example"] = "grace-id"
    return graph


@pytest.fixture
def upserter(graph: FakeGraph) -> CourseActivityUpserter:
    return CourseActivityUpserter(graph, MemoryStateStore())


def assigned(event_id: str, at: str, **assignment: Any) -> Any:
    return canonical(
        eventId=event_id,
        occurredAt=at,
        status="notStarted",
        completionPercentage=None,
        assignment={"type": "required", "dueAt": DUE, **assignment},
    )


def progress(event_id: str, at: str, status: str = "inProgress", percentage: int | None = 40) -> Any:
    return canonical(eventId=event_id, occurredAt=at, status=status, completionPercentage=percentage)


def withdrawn(event_id: str, at: str) -> Any:
    return canonical(
        eventId=event_id,
        occurredAt=at,
        status="notStarted",
        completionPercentage=None,
        assignment={"withdrawn": True},
    )


def the_record(graph: FakeGraph) -> ActivityRecord:
    [record] = graph.activities.values()
    return record


def writes(graph: FakeGraph) -> list[str]:
    return [c for c in graph.calls if c in ("create_activity", "update_activity", "delete_activity")]


async def test_an_assignment_creates_a_not_started_learning_assignment(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    result = await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z", notes="Before the audit."))
    assert result is UpsertResult.CREATED
    record = the_record(graph)
    assert record.assignment_type is AssignmentType.REQUIRED
    assert record.status is CourseStatus.NOT_STARTED
    assert record.due_at == datetime(2026, 12, 31, 17, tzinfo=UTC)
    assert record.notes == "Before the audit."
    assert record.assigned_at == datetime(2026, 11, 2, 9, tzinfo=UTC)  # the statement's time by default


async def test_progress_and_completion_update_the_assignment_not_a_second_record(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z"))
    await upserter.apply(progress("p1", "2026-11-03T09:00:00Z"))
    await upserter.apply(progress("p2", "2026-11-04T09:00:00Z", "completed", None))
    record = the_record(graph)
    assert record.is_assignment
    assert (record.status, record.completion_percentage) == (CourseStatus.COMPLETED, 100)
    assert writes(graph) == ["create_activity", "update_activity", "update_activity"]


async def test_a_moved_due_date_is_one_patch(graph: FakeGraph, upserter: CourseActivityUpserter) -> None:
    await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z", assignedAt="2026-11-02T08:00:00Z"))
    graph.calls.clear()
    await upserter.apply(assigned("a2", "2026-11-05T09:00:00Z", dueAt="2027-01-15T17:00:00Z"))
    assert writes(graph) == ["update_activity"]
    record = the_record(graph)
    assert record.due_at == datetime(2027, 1, 15, 17, tzinfo=UTC)
    assert record.assigned_at == datetime(2026, 11, 2, 8, tzinfo=UTC)  # the first statement's, not moved


async def test_an_older_statement_arriving_late_changes_nothing(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(assigned("a2", "2026-11-05T09:00:00Z", dueAt="2027-01-15T17:00:00Z"))
    graph.calls.clear()
    await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z"))
    assert the_record(graph).due_at == datetime(2027, 1, 15, 17, tzinfo=UTC)
    # only assignedDateTime moves: the first statement since the last withdrawal is earlier now
    assert the_record(graph).assigned_at == datetime(2026, 11, 2, 9, tzinfo=UTC)


async def test_withdrawn_before_any_progress_deletes_the_record(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z"))
    assert await upserter.apply(withdrawn("w1", "2026-11-03T09:00:00Z")) is UpsertResult.DELETED
    assert graph.activities == {}


async def test_withdrawn_after_progress_keeps_a_self_initiated_record_with_it(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z"))
    await upserter.apply(progress("p1", "2026-11-03T09:00:00Z", percentage=60))
    graph.calls.clear()
    await upserter.apply(withdrawn("w1", "2026-11-04T09:00:00Z"))
    record = the_record(graph)
    assert not record.is_assignment
    assert (record.status, record.completion_percentage) == (CourseStatus.IN_PROGRESS, 60)
    assert writes(graph) == ["delete_activity", "create_activity"]


async def test_self_initiated_progress_then_assigned_is_one_assignment_carrying_it(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(progress("p1", "2026-11-01T09:00:00Z", "completed", None))
    assert not the_record(graph).is_assignment
    graph.calls.clear()
    await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z"))
    record = the_record(graph)
    assert record.is_assignment
    assert (record.status, record.completed_at) == (
        CourseStatus.COMPLETED,
        datetime(2026, 11, 1, 9, tzinfo=UTC),
    )
    assert writes(graph) == ["delete_activity", "create_activity"]


async def test_a_new_assignment_type_recreates_the_record_since_no_patch_changes_it(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z"))
    graph.calls.clear()
    await upserter.apply(assigned("a2", "2026-11-03T09:00:00Z", type="recommended"))
    assert the_record(graph).assignment_type is AssignmentType.RECOMMENDED
    assert writes(graph) == ["delete_activity", "create_activity"]


async def test_the_assigner_is_resolved_like_a_learner_and_left_out_when_unknown(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z", assigner={"upn": "grace@contoso.example"}))
    assert the_record(graph).assigner_user_id == "grace-id"
    other = canonical(
        eventId="b1",
        course={"externalId": "course-101"},
        learner={"upn": "grace@contoso.example"},
        status="notStarted",
        completionPercentage=None,
        assignment={"type": "recommended", "assigner": {"upn": "nobody@contoso.example"}},
    )
    await upserter.apply(other)
    [assigned_to_grace] = [r for r in graph.activities.values() if r.learner_user_id == "grace-id"]
    assert assigned_to_grace.is_assignment
    assert assigned_to_grace.assigner_user_id is None


async def test_a_redelivered_assignment_costs_no_write(
    graph: FakeGraph, upserter: CourseActivityUpserter
) -> None:
    await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z"))
    graph.calls.clear()
    assert await upserter.apply(assigned("a1", "2026-11-02T09:00:00Z")) is UpsertResult.DEDUPLICATED
    assert writes(graph) == []
