"""Reconciling the state store with Graph: does Graph still hold what the bridge wrote?

The rows' courses are looked up first (`GET learningContents(externalId='...')`, once per course), then
each activity row with a Graph id is read back (`GET ...(externalcourseActivityId='...')`): up to 20
requests in one JSON batch, paced by the request, a throttled one waiting as its Retry-After says and
going again in a later batch. Each record is compared with the state the row says was last written.
Drift is:

- `missing`: Graph has no record for it (deleted outside the bridge);
- `replaced`: Graph's record under that external id is another one (another id), same owner;
- `foreignOwner`: the record belongs to another learner or content: the bridge never writes over it;
- `changed`: status, percentage or dates differ (edited outside the bridge), or, for an assignment,
  its type, assigned and due dates, notes or assigner (or it is no longer an assignment, or has
  become one), with the fields.

A record whose read Graph keeps throttling (or failing) past its attempts, or whose course's content
cannot be looked up, is `unread`, with the reason: a line of the report, not the end of it (the next
run reads it again). Only a missing permission (401/403) stops the run: every other read would fail
the same way.

Repair writes what the events call for again through the upserter: a missing record's row loses its
Graph id and the record is created again; a changed (or replaced) record's row takes what Graph holds,
and the PATCH back to the events' fold follows (or, when Graph's type or assigner differs, which no
PATCH can change, the record is deleted and created again with the progress and completion). A
foreign owner needs an operator: reported only.
Identifiers printed are activity ids (name-based UUIDs, no personal data) and sources.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from shared.delivery.deadline import Deadline
from shared.delivery.exceptions import PermanentFailure, TransientFailure
from shared.delivery.merge import RECORD_FIELDS, state_of
from shared.delivery.upsert import CourseActivityUpserter
from shared.graph.errors import GraphError
from shared.graph.gateway import ActivityRecord, ActivityWrite, LearningGraph
from shared.operations.batching import THROTTLE_ATTEMPTS, Pacer, in_batches
from shared.operations.catalog import GraphRefused
from shared.operations.maintenance import MaintainedStore
from shared.state.models import ActivityState
from shared.state.store import Conflict

T = TypeVar("T")

_JSON = {
    "status": "status",
    "completion_percentage": "completionPercentage",
    "started_at": "startedDateTime",
    "completed_at": "completedDateTime",
    # a self-initiated record where an assignment was written (or the reverse) differs here too
    "assignment_type": "assignmentType",
    "assigned_at": "assignedDateTime",
    "due_at": "dueDateTime",
    "notes": "notes",
    "assigner_user_id": "assignerUserId",
}

#: What is compared: what the events decide, and the assigner Graph shows (set on create only: a
#: record whose assigner differs is created again on repair, as one whose type differs).
COMPARED = (*RECORD_FIELDS, "assigner_user_id")


@dataclass(frozen=True)
class Drift:
    activity_id: str
    source: str
    kind: str  # missing | replaced | foreignOwner | changed
    fields: tuple[str, ...] = ()
    repaired: bool = False
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"activityId": self.activity_id, "source": self.source, "kind": self.kind}
        if self.fields:
            doc["fields"] = list(self.fields)
        doc["repaired"] = self.repaired
        if self.detail:
            doc["detail"] = self.detail
        return doc


@dataclass(frozen=True)
class Unread:
    """A record that could not be read back (Graph kept failing or throttling the read past its
    attempts): neither in line nor drifted, as far as anyone knows; the next run reads it again."""

    activity_id: str
    source: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"activityId": self.activity_id, "source": self.source, "reason": self.reason}


@dataclass
class ReconcileReport:
    checked: int = 0
    in_line: int = 0
    skipped: int = 0  # rows with no record to compare (never created, or every event voided)
    drift: list[Drift] = field(default_factory=list)
    unread: list[Unread] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        kinds: dict[str, int] = {"missing": 0, "replaced": 0, "foreignOwner": 0, "changed": 0}
        for item in self.drift:
            kinds[item.kind] += 1
        return {
            "checked": self.checked,
            "inLine": self.in_line,
            "skipped": self.skipped,
            "unread": len(self.unread),
            **kinds,
            "repaired": sum(1 for d in self.drift if d.repaired),
        }

    @property
    def settled(self) -> bool:
        """Every record read, and no drift left: what exit status 0 means."""
        return not self.unread and all(d.repaired for d in self.drift)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.counts(),
            "drift": [d.to_json() for d in self.drift],
            "unreadRecords": [u.to_json() for u in self.unread],
        }


async def rows_to_check(store: MaintainedStore, source: str | None) -> list[ActivityState]:
    return [
        row
        async for row in store.all_activities()
        if row.owner is not None and (source is None or row.owner.source == source)
    ]


async def reconcile(
    store: MaintainedStore,
    graph: LearningGraph,
    upserter: CourseActivityUpserter,
    rows: list[ActivityState],
    *,
    repair: bool,
    pacer: Pacer,
    advance: Callable[[], None] = lambda: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    deadline: Deadline | None = None,
) -> ReconcileReport:
    """Read `rows`' records back and compare; with a `deadline`, a throttled read whose wait would
    outlast it is counted unread instead of waited for."""
    report = ReconcileReport()
    readable: dict[str, ActivityState] = {}
    for row in rows:
        if row.graph_id is None:
            advance()
            report.skipped += 1
        else:
            readable[row.activity_id] = row
    courses = sorted({row.owner.course_id for row in readable.values() if row.owner is not None})
    contents: dict[str, str | None] = {}
    unknown: dict[str, str] = {}  # courses whose content could not be read, and why
    async for course_id, found in in_batches(
        courses, graph.find_content_ids, pacer=pacer, sleep=sleep, deadline=deadline
    ):
        content = _read(found, "LearningContent.Read.All")
        if isinstance(content, GraphError):
            unknown[course_id] = f"its course's content could not be read: {_failure(content)}"
        else:
            contents[course_id] = content
    for activity_id, row in list(readable.items()):
        assert row.owner is not None
        if row.owner.course_id in unknown:
            del readable[activity_id]
            report.unread.append(Unread(activity_id, row.owner.source, unknown[row.owner.course_id]))
            advance()
    reads = in_batches(list(readable), graph.get_activities, pacer=pacer, sleep=sleep, deadline=deadline)
    async for activity_id, answer in reads:
        advance()
        row, record = readable[activity_id], _read(answer, "LearningSelfInitiatedCourse.ReadWrite.All")
        if isinstance(record, GraphError):
            assert row.owner is not None
            report.unread.append(Unread(activity_id, row.owner.source, _failure(record)))
            continue
        report.checked += 1
        drift = _compare(row, record, contents)
        if drift is None:
            report.in_line += 1
            continue
        if repair and drift.kind != "foreignOwner":
            drift = await _repair(store, upserter, row, record, drift)
        report.drift.append(drift)
    return report


def _read(answer: T | GraphError | None, permission: str) -> T | GraphError | None:
    """A read's answer, once throttling is over: what was read, None, or its failure (raised when it
    is a missing permission: every other read would fail the same way)."""
    if isinstance(answer, GraphError) and answer.status in (401, 403):
        raise GraphRefused(
            f"Graph refused the read ({answer.status} {answer.code}): the identity needs {permission}"
        ) from None
    return answer


def _failure(error: GraphError) -> str:
    again = f" (still failing after {THROTTLE_ATTEMPTS} attempts)" if error.transient else ""
    return f"Graph {error.status} {error.code}: {error.message[:200]}{again}"


def _compare(
    row: ActivityState, record: ActivityRecord | None, contents: dict[str, str | None]
) -> Drift | None:
    """`contents`: each course's content id (None when Graph knows no such content: then the content
    is not compared)."""
    assert row.owner is not None
    source = row.owner.source
    if record is None:
        return Drift(row.activity_id, source, "missing")
    content_id = contents.get(row.owner.course_id)
    if record.learner_user_id.casefold() != row.owner.learner_user_id.casefold() or (
        content_id is not None and record.learning_content_id != content_id
    ):
        return Drift(row.activity_id, source, "foreignOwner")
    if record.id != row.graph_id:
        return Drift(row.activity_id, source, "replaced")
    written, held = _compared(state_of(row)), _compared(state_of(record))
    fields = tuple(_JSON[f] for f in COMPARED if getattr(written, f) != getattr(held, f))
    return Drift(row.activity_id, source, "changed", fields) if fields else None


def _compared(state: ActivityWrite) -> ActivityWrite:
    """The state as compared: an object id in any case is the same id (no drift, and no re-creation
    on repair, for an assigner Graph spells in another case)."""
    assigner = state.assigner_user_id
    return replace(state, assigner_user_id=assigner.casefold() if assigner is not None else None)


async def _repair(
    store: MaintainedStore,
    upserter: CourseActivityUpserter,
    row: ActivityState,
    record: ActivityRecord | None,
    drift: Drift,
) -> Drift:
    """Set the row to what Graph holds (nothing, for a missing record), then let the upserter write
    what the events call for. A row that moved meanwhile (an event arrived) is left to that event."""
    held = state_of(record) if record is not None else None
    current = replace(
        row,
        graph_id=record.id if record is not None else None,
        status=held.status if held else None,
        completion_percentage=held.completion_percentage if held else None,
        started_at=held.started_at if held else None,
        completed_at=held.completed_at if held else None,
        assignment_type=held.assignment_type if held else None,
        assigned_at=held.assigned_at if held else None,
        due_at=held.due_at if held else None,
        notes=held.notes if held else None,
        assigner_user_id=held.assigner_user_id if held else None,
        claimed_at=None,
    )
    try:
        await store.save_activity(current)
        await upserter.resync(row.activity_id)
    except Conflict:
        return replace(drift, detail="the row changed meanwhile (an event arrived): run reconcile again")
    except (PermanentFailure, TransientFailure) as failure:
        return replace(drift, detail=f"not repaired: {failure.reason}")
    return replace(drift, repaired=True)
