"""The records the state store keeps (plain dataclasses: the store maps them to table entities)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from shared.events.identity import ActivityOwner, same_object_id
from shared.events.model import AssignmentType, CourseStatus


@dataclass(frozen=True)
class DeliveryRecord:
    source: str
    event_id: str
    activity_id: str
    status: str  # applied | parked | deadlettered | voided (a void that arrived before its statement)
    seen: int = 1
    voided_by: str | None = None
    #: When the bridge accepted the event (its queue message's receivedAt), for `trace`; None: not
    #: recorded (a row written before it was, or a voiding recorded alone).
    received_at: datetime | None = None
    #: How the event's learner was found in Entra ("email (mail)", "userId"...: the identifier's kind
    #: and the attribute that matched, never a value), for `trace`; None: not recorded.
    learner_found_by: str | None = None


@dataclass(frozen=True)
class AssignmentEntry:
    """What one event says about the record's assignment: the whole assignment as it stands (its type,
    due date, notes, assigner resolved to an Entra id), or that it was withdrawn. The newest statement
    of a record wins (merge.py)."""

    withdrawn: bool = False
    assignment_type: AssignmentType | None = None
    assigned_at: datetime | None = None  # as the source stated it (None: not stated)
    due_at: datetime | None = None
    notes: str | None = None
    assigner_user_id: str | None = None

    def assigned_by(self, user_id: str) -> bool:
        """Whether it names `user_id` (an Entra object id, in any case) as the assigner."""
        return self.assigner_user_id is not None and same_object_id(self.assigner_user_id, user_id)


@dataclass(frozen=True)
class EventEntry:
    """One event's contribution to an activity (what the merge folds), keyed by source and event id:
    two sources may use the same event id, and neither may replace the other's entry."""

    source: str
    event_id: str
    occurred_at: datetime
    status: CourseStatus
    completion_percentage: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    voided_by: str | None = None  # the voiding statement that withdrew this event
    assignment: AssignmentEntry | None = None

    @classmethod
    def tombstone(cls, source: str, event_id: str, voided_by: str) -> EventEntry:
        """A voiding recorded before its event arrived: in the log, so the event, when it comes, finds
        its key taken (what an entry first said stands) and folds as nothing."""
        from datetime import UTC

        return cls(
            source, event_id, datetime(1970, 1, 1, tzinfo=UTC), CourseStatus.NOT_STARTED, voided_by=voided_by
        )


#: How many Graph writes an activity row remembers (the newest): what `trace` shows, bounded so that the
#: row stays small however often the record is written or refused (a throttled write retried for
#: hours, a learner parked for days).
WRITE_HISTORY = 16
#: The longest `GraphWrite.cause` kept (a group of events written together is named by its first ones).
CAUSE_CHARACTERS = 300


@dataclass(frozen=True)
class GraphWrite:
    """One Graph write of the record, as `trace` shows it: which request, when, Graph's answer (or
    the reason it was classified as), and the event(s) that called for it. Only ids the activity's
    log holds already: nothing personal."""

    request: str  # create | patch | delete
    at: datetime
    status: int | None  # Graph's HTTP status; None: no answer (unreachable, timed out)
    reason: str | None = None  # the failure as classified (shared.delivery.upsert.classify); None: written
    cause: str = ""  # "source:eventId" of the event(s) behind it (a voiding: its own id), or "reconcile"


def noted(state: ActivityState, *writes: GraphWrite) -> ActivityState:
    """The state with `writes` added to its history, the oldest dropped beyond WRITE_HISTORY."""
    if not writes:
        return state
    return replace(state, writes=(*state.writes, *writes)[-WRITE_HISTORY:])


@dataclass(frozen=True)
class ActivityState:
    """A course activity as last written to Graph, and who owns it. `etag` guards concurrent updates.

    `graph_id` is None before the record is created and after it was deleted (every event behind it
    voided); the owner stays, so the record can be created again for the same learner and course.
    """

    activity_id: str
    owner: ActivityOwner | None = None
    graph_id: str | None = None
    status: CourseStatus | None = None
    completion_percentage: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    claimed_at: datetime | None = None
    etag: str | None = None
    #: The assignment as last written (None: a learningSelfInitiatedCourse, or no record).
    assignment_type: AssignmentType | None = None
    assigned_at: datetime | None = None
    due_at: datetime | None = None
    notes: str | None = None
    assigner_user_id: str | None = None
    #: The event-log entries the row itself holds (TableStateStore keeps recent entries in the row, so
    #: an update is one row write); carried through `replace` so that a save keeps them. Not state.
    held: tuple[EventEntry, ...] = field(default=(), compare=False, repr=False)
    #: The record's last Graph writes, oldest first (at most WRITE_HISTORY), kept in the row: what
    #: `trace` shows. Not state: carried through `replace` like `held`.
    writes: tuple[GraphWrite, ...] = field(default=(), compare=False, repr=False)


class LetterState(StrEnum):
    PARKED = "parked"  # "not yet": retried on a schedule
    DEADLETTERED = "deadlettered"  # needs an operator
    REPLAYED = "replayed"  # put back on the queue by an operator


@dataclass(frozen=True)
class DeadLetterRecord:
    source: str
    event_id: str
    state: LetterState
    reason: str
    detail: str
    message: str  # the original queue message, verbatim
    attempts: int
    first_failure: datetime
    last_failure: datetime
    next_attempt: datetime | None = None
    graph_error_code: str | None = None
    activity_id: str | None = None


@dataclass(frozen=True)
class LogCopy:
    """One place an activity's event log holds a key: the activity row's own list of entries, or a
    row of its own (an entry spilled or added alone, a voiding recorded alone, a retention baseline).
    Retention decides from these which keys to fold; the store alone knows what `handle` is."""

    source: str
    event_id: str
    entry: EventEntry | None  # None: a voiding recorded before its event arrived
    #: When the copy was last written (Table storage's Timestamp; for the entries the activity row
    #: holds, the row's): retention goes by it.
    written_at: datetime | None
    voided_by: str | None
    held: bool
    handle: object = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.event_id)


@dataclass(frozen=True)
class LogSnapshot:
    """An activity's log as read at one moment, copy by copy, with the row that holds some of it (its
    ETag guards a fold that takes entries out of it)."""

    log_key: str
    activity: ActivityState | None
    copies: tuple[LogCopy, ...]


@dataclass(frozen=True)
class JobCheckpoint:
    """Where a daily maintenance pass (reconcile, retention) stands: a pass longer than one run's time
    budget goes on from its cursor in the next run, with the counts so far."""

    name: str
    occurrence: datetime  # the scheduled time the pass serves
    finished: bool
    cursor: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    runs: int = 0
