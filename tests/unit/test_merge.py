"""`covers`: whether a Graph record already says what an event says (the CLI's `send --wait`)."""

from dataclasses import replace
from datetime import UTC, datetime

from shared.delivery.merge import contribution, covers, fold
from shared.events.model import CanonicalEvent, CourseStatus
from shared.graph.gateway import ActivityRecord
from tests.builders import event

T = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)


def record(status: CourseStatus, percentage: int | None, completed: datetime | None = None) -> ActivityRecord:
    return ActivityRecord("g1", "x", "u", "c", status, percentage, T, completed)


def make(**overrides: object) -> CanonicalEvent:
    return CanonicalEvent.model_validate(event(source="generic", occurredAt=T.isoformat(), **overrides))


def test_a_completed_record_covers_a_late_progress_event() -> None:
    assert covers(record(CourseStatus.COMPLETED, 100, T), make(completionPercentage=40))


def test_a_record_behind_the_event_does_not_cover_it() -> None:
    assert not covers(record(CourseStatus.IN_PROGRESS, 40), make(completionPercentage=60))
    assert not covers(
        record(CourseStatus.IN_PROGRESS, 40), make(status="completed", completionPercentage=None)
    )


def test_the_fold_of_nothing_left_is_not_started() -> None:
    voided = replace(contribution(make()), voided_by="v")
    assert fold([voided]).status is CourseStatus.NOT_STARTED
