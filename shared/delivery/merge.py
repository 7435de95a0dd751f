"""Merge rules: what an event may change in an existing course activity.

A record never moves backwards: status only rises (notStarted < inProgress < completed), so a completed
course stays completed; completionPercentage never decreases; startedDateTime keeps the earliest start;
completedDateTime is the first completion. These rules make applying an event idempotent and make a
late, out-of-order progress event harmless.
"""

from __future__ import annotations

from datetime import datetime

from shared.events.model import CanonicalEvent, CourseStatus
from shared.graph.gateway import ActivityRecord, ActivityWrite

_RANK = {CourseStatus.NOT_STARTED: 0, CourseStatus.IN_PROGRESS: 1, CourseStatus.COMPLETED: 2}


def desired_state(event: CanonicalEvent) -> ActivityWrite:
    """The fields a new record gets from its first event."""
    completed = event.status is CourseStatus.COMPLETED
    started = event.started_at
    if started is None and event.status is not CourseStatus.NOT_STARTED:
        started = event.completed_at if completed and event.completed_at else event.occurred_at
    return ActivityWrite(
        status=event.status,
        completion_percentage=100 if completed else event.completion_percentage,
        started_at=started,
        completed_at=(event.completed_at or event.occurred_at) if completed else None,
    )


def changes_for(existing: ActivityRecord, event: CanonicalEvent) -> ActivityWrite:
    """Only the fields the event moves forward; an empty write means there is nothing to do."""
    wanted = desired_state(event)
    status = _higher_status(existing.status, wanted.status)
    percentage = _max(existing.completion_percentage, wanted.completion_percentage)
    if status is CourseStatus.COMPLETED:
        percentage = 100
    started = _min(existing.started_at, wanted.started_at)
    completed = existing.completed_at or (wanted.completed_at if status is CourseStatus.COMPLETED else None)
    return ActivityWrite(
        status=status if status != existing.status else None,
        completion_percentage=percentage if percentage != existing.completion_percentage else None,
        started_at=started if started != existing.started_at else None,
        completed_at=completed if completed != existing.completed_at else None,
    )


def _higher_status(current: CourseStatus | None, new: CourseStatus | None) -> CourseStatus | None:
    if current is None:
        return new
    if new is None:
        return current
    return new if _RANK[new] > _RANK[current] else current


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)
