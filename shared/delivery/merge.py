"""Merge rules: what a course activity should be, given the events behind it.

A record never moves backwards: status only rises (notStarted < inProgress < completed), so a completed
course stays completed; completionPercentage never decreases; startedDateTime keeps the earliest start;
completedDateTime is the first completion. The state is a fold of the events' contributions with
max/min operations, so it depends on which events happened, never on the order or the number of times
they arrived: redeliveries, retries and reordering all end in the same record. The one way back is a
voided statement: its event leaves the fold, and the record becomes what the remaining events say;
when nothing is left, the fold is None and the record is deleted.

A self-initiated record is `inProgress` or `completed`, never `notStarted` (the learningSelfInitiatedCourse
resource page and "Update learningCourseActivity"): an event that says only "not started" calls for no
record at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from shared.events.model import CanonicalEvent, CourseStatus
from shared.graph.gateway import ActivityRecord, ActivityWrite
from shared.state.models import EventEntry

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


class CourseState(Protocol):
    """Anything that holds a course activity's state: a Graph record, a state-store row."""

    @property
    def status(self) -> CourseStatus | None: ...
    @property
    def completion_percentage(self) -> int | None: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def completed_at(self) -> datetime | None: ...


def state_of(current: CourseState) -> ActivityWrite:
    return ActivityWrite(
        status=current.status,
        completion_percentage=current.completion_percentage,
        started_at=current.started_at,
        completed_at=current.completed_at,
    )


def graph_baseline(record: ActivityRecord) -> EventEntry:
    """What Graph already had, as an event of its own: folds never move below it, and voiding a
    statement never withdraws it."""
    return EventEntry(
        source="graph",
        event_id=record.id,
        occurred_at=record.started_at or record.completed_at or datetime(1970, 1, 1, tzinfo=UTC),
        status=record.status or CourseStatus.NOT_STARTED,
        completion_percentage=record.completion_percentage,
        started_at=record.started_at,
        completed_at=record.completed_at,
    )


def contribution(event: CanonicalEvent) -> EventEntry:
    """What one event says about its activity, as the state store keeps it."""
    wanted = desired_state(event)
    assert wanted.status is not None
    return EventEntry(
        source=event.source,
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        status=wanted.status,
        completion_percentage=wanted.completion_percentage,
        started_at=wanted.started_at,
        completed_at=wanted.completed_at,
    )


def fold(entries: Iterable[EventEntry]) -> ActivityWrite | None:
    """The record the events (those not voided) call for; None when none of them calls for a record."""
    live = [e for e in entries if e.voided_by is None and e.status is not CourseStatus.NOT_STARTED]
    if not live:
        return None
    status = max((e.status for e in live), key=_RANK.__getitem__)
    percentages = [e.completion_percentage for e in live if e.completion_percentage is not None]
    completions = [e.completed_at for e in live if e.status is CourseStatus.COMPLETED and e.completed_at]
    starts = [e.started_at for e in live if e.started_at is not None]
    return ActivityWrite(
        status=status,
        completion_percentage=100 if status is CourseStatus.COMPLETED else max(percentages, default=None),
        started_at=min(starts, default=None),
        completed_at=min(completions, default=None) if status is CourseStatus.COMPLETED else None,
    )


def patch(current: ActivityWrite, desired: ActivityWrite) -> ActivityWrite | None:
    """The PATCH that turns `current` into `desired`, or None when they already agree.

    Changed fields are set and vanished ones (a voided completion) cleared with null, as the Update
    page's example does; `status` is always there, because that page marks it Required for a
    self-initiated course.
    """
    fields = ("completion_percentage", "started_at", "completed_at")
    changed = {f: getattr(desired, f) for f in fields if getattr(desired, f) != getattr(current, f)}
    if not changed and desired.status == current.status:
        return None
    return ActivityWrite(
        status=desired.status,
        clear=frozenset(f for f, value in changed.items() if value is None),
        **{f: v for f, v in changed.items() if v is not None},
    )


def whole(desired: ActivityWrite) -> ActivityWrite:
    """The PATCH that writes the whole record, whatever Graph holds now: every field, the empty ones as
    null (a stray completion written by a lost attempt is cleared too)."""
    fields = ("completion_percentage", "started_at", "completed_at")
    return ActivityWrite(
        status=desired.status,
        clear=frozenset(f for f in fields if getattr(desired, f) is None),
        **{f: getattr(desired, f) for f in fields if getattr(desired, f) is not None},
    )
