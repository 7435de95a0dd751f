"""The merge rules at their edges: what a self-initiated record may say, and what a PATCH carries."""

from dataclasses import replace
from datetime import UTC, datetime

from shared.delivery.merge import contribution, fold, patch
from shared.events.model import CanonicalEvent, CourseStatus
from shared.graph.gateway import ActivityWrite
from tests.builders import event

T = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)


def make(**overrides: object) -> CanonicalEvent:
    return CanonicalEvent.model_validate(event(source="generic", occurredAt=T.isoformat(), **overrides))


def test_nothing_left_after_voiding_calls_for_no_record() -> None:
    voided = replace(contribution(make()), voided_by="v")
    assert fold([voided]) is None


def test_not_started_events_alone_call_for_no_record() -> None:
    # learningSelfInitiatedCourse: status is inProgress or completed, never notStarted.
    assert fold([contribution(make(status="notStarted", completionPercentage=None))]) is None


def test_a_patch_always_carries_status_even_when_only_progress_changed() -> None:
    current = ActivityWrite(CourseStatus.IN_PROGRESS, 40, T)
    desired = ActivityWrite(CourseStatus.IN_PROGRESS, 60, T)
    assert patch(current, desired) == ActivityWrite(status=CourseStatus.IN_PROGRESS, completion_percentage=60)


def test_a_voided_completion_is_cleared_with_null() -> None:
    current = ActivityWrite(CourseStatus.COMPLETED, 100, T, T)
    desired = ActivityWrite(CourseStatus.IN_PROGRESS, 40, T)
    write = patch(current, desired)
    assert write is not None
    assert write.status is CourseStatus.IN_PROGRESS
    assert write.completion_percentage == 40
    assert write.clear == frozenset({"completed_at"})


def test_no_patch_when_nothing_differs() -> None:
    state = ActivityWrite(CourseStatus.IN_PROGRESS, 40, T)
    assert patch(state, state) is None


def test_events_of_two_sources_with_one_event_id_are_two_entries() -> None:
    mine = contribution(make(eventId="same"))
    theirs = contribution(CanonicalEvent.model_validate(event(source="other", eventId="same")))
    assert (mine.source, mine.event_id) != (theirs.source, theirs.event_id)
