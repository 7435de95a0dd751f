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

Assignments (issue 18). An event may state the record's assignment (type, due date, notes, assigner) or
its withdrawal. The newest such statement wins, by event time (ties by source and event id, so the
choice never depends on arrival): a statement is the whole assignment as it then stood, so its due
date, type and notes replace the older ones (a field it leaves out is cleared). The assigner is the
exception: a statement that names none (or one Entra cannot resolve: a person who left) leaves it
"not stated", as a restatement does, so the assigner is that of the newest statement since the last
withdrawal that names one the bridge resolved; a due date or notes moved without repeating the assigner
stays one PATCH. When the newest statement is a withdrawal, the record is not an assignment; a later
statement assigns it again.
assignedDateTime is the newest statement's `assignedAt`, or else the time of the first statement
since the last withdrawal. An assigned record exists even without progress (`notStarted` is valid
for an assignment); its status, percentage and completion are folded from the progress as before,
so a completion stays a completion through reassignments and withdrawals. An assignment has no
startedDateTime. Withdrawn with no progress: no record; with progress: a self-initiated record.
Voiding an assignment statement takes it out like any other event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from shared.events.identity import same_object_id
from shared.events.model import AssignmentType, CanonicalEvent, CourseStatus
from shared.graph.gateway import ActivityRecord, ActivityWrite
from shared.state.models import AssignmentEntry, EventEntry

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
    @property
    def assignment_type(self) -> AssignmentType | None: ...
    @property
    def assigned_at(self) -> datetime | None: ...
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def notes(self) -> str | None: ...
    @property
    def assigner_user_id(self) -> str | None: ...


def state_of(current: CourseState) -> ActivityWrite:
    return ActivityWrite(
        status=current.status,
        completion_percentage=current.completion_percentage,
        started_at=current.started_at,
        completed_at=current.completed_at,
        assignment_type=current.assignment_type,
        assigned_at=current.assigned_at,
        due_at=current.due_at,
        notes=current.notes,
        assigner_user_id=current.assigner_user_id,
    )


#: The source of the entry that stands for what Graph had when a record was adopted.
_ADOPTED = "graph"


def graph_baseline(record: ActivityRecord) -> EventEntry:
    """What Graph already had, as an event of its own: folds never move below it, and voiding a
    statement never withdraws it."""
    assignment = None
    if record.assignment_type is not None:  # stated at the epoch: any statement of the bridge's is newer
        assignment = AssignmentEntry(
            assignment_type=record.assignment_type,
            assigned_at=record.assigned_at,
            due_at=record.due_at,
            notes=record.notes,
            assigner_user_id=record.assigner_user_id,
        )
    return EventEntry(
        source=_ADOPTED,
        event_id=record.id,
        occurred_at=datetime(1970, 1, 1, tzinfo=UTC)
        if assignment
        else record.started_at or record.completed_at or datetime(1970, 1, 1, tzinfo=UTC),
        status=record.status or CourseStatus.NOT_STARTED,
        completion_percentage=record.completion_percentage,
        started_at=record.started_at,
        completed_at=record.completed_at,
        assignment=assignment,
    )


def contribution(event: CanonicalEvent, assigner_user_id: str | None = None) -> EventEntry:
    """What one event says about its activity, as the state store keeps it; `assigner_user_id`: the
    assignment's assigner as resolved in Entra (None: not given, or not found: not stated, the
    assigner the record had stands)."""
    wanted = desired_state(event)
    assert wanted.status is not None
    stated = event.assignment
    assignment = None
    if stated is not None:
        assignment = (
            AssignmentEntry(withdrawn=True)
            if stated.withdrawn
            else AssignmentEntry(
                assignment_type=stated.type,
                assigned_at=stated.assigned_at,
                due_at=stated.due_utc(),
                notes=stated.notes,
                assigner_user_id=assigner_user_id,
            )
        )
    return EventEntry(
        source=event.source,
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        status=wanted.status,
        completion_percentage=wanted.completion_percentage,
        started_at=wanted.started_at,
        completed_at=wanted.completed_at,
        assignment=assignment,
    )


def _statement_order(entry: EventEntry) -> tuple[datetime, str, str]:
    return (entry.occurred_at, entry.source, entry.event_id)


def current_assignment(live: Iterable[EventEntry]) -> AssignmentEntry | None:
    """The assignment the live entries leave standing (assignedAt filled in), or None: never assigned,
    or the newest statement is a withdrawal."""
    statements = sorted((e for e in live if e.assignment is not None), key=_statement_order)
    if not statements:
        return None
    newest = statements[-1].assignment
    assert newest is not None
    if newest.withdrawn:
        return None
    withdrawals = [e for e in statements if e.assignment is not None and e.assignment.withdrawn]
    since = [
        e for e in statements if not withdrawals or _statement_order(e) > _statement_order(withdrawals[-1])
    ]
    return replace(
        newest, assigned_at=newest.assigned_at or _first_assigned(since), assigner_user_id=_assigner(since)
    )


def _assigner(statements: list[EventEntry]) -> str | None:
    """The assigner of the assignment standing now: the newest statement's (since the last withdrawal)
    that names one the bridge resolved; a statement without one leaves the assigner as it was."""
    named = [e.assignment.assigner_user_id for e in statements if e.assignment is not None]
    return next((assigner for assigner in reversed(named) if assigner is not None), None)


def deciding_statements(live: Iterable[EventEntry]) -> set[tuple[str, str]]:
    """The keys of the assignment statements `current_assignment` reads among `live`: the newest, the
    last withdrawal, the first since it (with any adopted record before it, which `_first_assigned`
    may pass over), and the newest since it that names each assigner (the newest of all is the one
    read; each other's is read once forget takes the newer assigners out of the log). Taking out any
    other statement's assignment changes nothing, and stays so as newer statements come and as
    assigners are forgotten (retention folds those)."""
    statements = sorted((e for e in live if e.assignment is not None), key=_statement_order)
    if not statements:
        return set()
    keep = [statements[-1]]
    withdrawals = [i for i, e in enumerate(statements) if e.assignment is not None and e.assignment.withdrawn]
    since = statements[withdrawals[-1] + 1 :] if withdrawals else statements
    if withdrawals:
        keep.append(statements[withdrawals[-1]])
    for entry in since:
        keep.append(entry)
        assert entry.assignment is not None
        if entry.assignment.assigned_at is not None or entry.source != _ADOPTED:
            break
    newest_by_assigner = {
        e.assignment.assigner_user_id.casefold(): e
        for e in since
        if e.assignment is not None and e.assignment.assigner_user_id is not None
    }
    keep += newest_by_assigner.values()
    keep += [e for e in statements if e.source == _ADOPTED]
    return {(e.source, e.event_id) for e in keep}


def _first_assigned(statements: list[EventEntry]) -> datetime | None:
    """When the assignment standing now was made: the first statement's stated assignedAt, else its
    time; an adopted record (graph_baseline: dated at the epoch only to order first) counts only by
    the assignedDateTime Graph had, if any."""
    for entry in statements:
        assert entry.assignment is not None
        if entry.assignment.assigned_at is not None:
            return entry.assignment.assigned_at
        if entry.source != _ADOPTED:
            return entry.occurred_at
    return None


def fold(entries: Iterable[EventEntry]) -> ActivityWrite | None:
    """The record the events (those not voided) call for; None when none of them calls for a record."""
    every = [e for e in entries if e.voided_by is None]
    assigned = current_assignment(every)
    live = [e for e in every if e.status is not CourseStatus.NOT_STARTED]
    if not live and assigned is None:
        return None
    status = max((e.status for e in live), key=_RANK.__getitem__, default=CourseStatus.NOT_STARTED)
    percentages = [e.completion_percentage for e in live if e.completion_percentage is not None]
    completions = [e.completed_at for e in live if e.status is CourseStatus.COMPLETED and e.completed_at]
    starts = [e.started_at for e in live if e.started_at is not None]
    progress = ActivityWrite(
        status=status,
        completion_percentage=100 if status is CourseStatus.COMPLETED else max(percentages, default=None),
        started_at=min(starts, default=None),
        completed_at=min(completions, default=None) if status is CourseStatus.COMPLETED else None,
    )
    if assigned is None:
        return progress
    return replace(
        progress,
        started_at=None,  # learningAssignment has no startedDateTime
        assignment_type=assigned.assignment_type,
        assigned_at=assigned.assigned_at,
        due_at=assigned.due_at,
        notes=assigned.notes,
        assigner_user_id=assigned.assigner_user_id,
    )


#: What a record holds that its events decide (progress, and an assignment's type, dates and notes):
#: what reconcile compares with Graph, and what the fault run checks.
RECORD_FIELDS = (
    "status",
    "completion_percentage",
    "started_at",
    "completed_at",
    "assignment_type",
    "assigned_at",
    "due_at",
    "notes",
)


def same_kind(current: ActivityWrite, desired: ActivityWrite) -> bool:
    """Whether a PATCH can turn one into the other: the same @odata.type and, for an assignment, the
    same assignmentType and assigner, in any case (the Update page lets a PATCH change none of them:
    the newest statement's assigner must win whatever order the statements came in). Otherwise the
    record is deleted and created again."""
    if current.assignment_type != desired.assignment_type:
        return False
    return desired.assignment_type is None or same_object_id(
        current.assigner_user_id, desired.assigner_user_id
    )


#: Fields a PATCH may write: for a learningSelfInitiatedCourse, and more for a learningAssignment (the
#: Update page's tables; the assigner is set on create only).
_PROGRESS_FIELDS = ("completion_percentage", "started_at", "completed_at")
_ASSIGNMENT_FIELDS = ("completion_percentage", "completed_at", "assigned_at", "due_at", "notes")


def _patchable(desired: ActivityWrite) -> tuple[str, ...]:
    return _ASSIGNMENT_FIELDS if desired.assignment_type is not None else _PROGRESS_FIELDS


def patch(current: ActivityWrite, desired: ActivityWrite) -> ActivityWrite | None:
    """The PATCH that turns `current` into `desired`, or None when they already agree.

    Changed fields are set and vanished ones (a voided completion) cleared with null, as the Update
    page's example does; `status` is always there, because that page marks it Required for a
    self-initiated course.
    """
    changed = {
        f: getattr(desired, f) for f in _patchable(desired) if getattr(desired, f) != getattr(current, f)
    }
    if not changed and desired.status == current.status:
        return None
    return ActivityWrite(
        status=desired.status,
        clear=frozenset(f for f, value in changed.items() if value is None),
        assignment_type=desired.assignment_type,
        **{f: v for f, v in changed.items() if v is not None},
    )


def whole(desired: ActivityWrite) -> ActivityWrite:
    """The PATCH that writes the whole record, whatever Graph holds now: every field, the empty ones as
    null (a stray completion written by a lost attempt is cleared too)."""
    fields = _patchable(desired)
    return ActivityWrite(
        status=desired.status,
        clear=frozenset(f for f in fields if getattr(desired, f) is None),
        assignment_type=desired.assignment_type,
        **{f: getattr(desired, f) for f in fields if getattr(desired, f) is not None},
    )
