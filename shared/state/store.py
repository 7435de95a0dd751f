"""The state store: one small interface, and its Azure Table storage implementation.

Table keys cannot hold `/ \\ # ?` or control characters and ids from platforms can, so rows are keyed
by a hash of the id and keep the id itself as a property. Every write that could race is conditional:
creating an activity row fails if another worker created it first, and updating one fails if its
ETag moved (`Conflict`); the caller then re-reads and tries again, or lets the queue retry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.events.identity import ActivityOwner
from shared.events.model import AssignmentType, CourseStatus
from shared.state.models import (
    ActivityState,
    AssignmentEntry,
    DeadLetterRecord,
    DeliveryRecord,
    EventEntry,
    GraphWrite,
    JobCheckpoint,
    LetterState,
    LogCopy,
    LogSnapshot,
)

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient, TableServiceClient

log = logging.getLogger(__name__)

DELIVERIES = "bridgedeliveries"
#: One partition per course activity: its row (RowKey `activity`) and its event log (a row per event).
ACTIVITIES = "bridgecourseactivities"
ACTIVITY_ROW = "activity"
DEADLETTERS = "bridgedeadletters"
#: One row per daily maintenance job: where its pass stands (shared.operations.jobs).
JOBS = "bridgejobs"


class Conflict(Exception):
    """Another worker changed the row first: re-read, or let the queue retry."""


#: How often `mark_unapplied` reads again when another write came between its read and its write.
_MARK_ATTEMPTS = 5


class StateStore(Protocol):
    async def delivery(self, source: str, event_id: str) -> DeliveryRecord | None: ...
    async def save_delivery(self, record: DeliveryRecord) -> None:
        """Write the record; a voiding recorded for the event earlier stays (it is merged, not replaced)."""

    async def insert_delivery(self, record: DeliveryRecord) -> DeliveryRecord | None:
        """Write the record only if the event has no row yet: None when written, else the row found
        (a voiding recorded first, an earlier attempt's status, a concurrent copy's)."""

    async def mark_unapplied(self, source: str, event_id: str, status: str) -> bool:
        """Set the event's status (`failed`: parked or dead-lettered) unless its row says `applied`:
        False, and nothing written, when it does. Atomic against a copy applied meanwhile on another
        instance (whose `applied` must never be overwritten); Conflict when the row kept changing."""

    async def void_delivery(self, source: str, event_id: str, voided_by: str) -> None:
        """Record that the source withdrew the event, whether or not the event has arrived (a row
        that did not exist reads as status `voided`). Merged: it changes nothing else."""

    async def activity(self, activity_id: str) -> ActivityState | None: ...
    async def load(self, activity_id: str) -> tuple[ActivityState | None, list[EventEntry]]:
        """The activity's row and its event log, read together (one request)."""

    async def claim_activity(
        self, activity_id: str, owner: ActivityOwner, entries: Sequence[EventEntry] = ()
    ) -> ActivityState:
        """Create the activity's row, with `entries` added to its log in the same transaction;
        Conflict if it exists (another worker is creating it)."""

    async def save_activity(self, state: ActivityState, entries: Sequence[EventEntry] = ()) -> ActivityState:
        """Replace the row if its ETag is still `state.etag`, adding `entries` to the log in the same
        transaction (each as `add_event` would); Conflict otherwise, and nothing is written."""

    async def add_event(self, activity_id: str, entry: EventEntry) -> None:
        """Add or replace the entry of (entry.source, entry.event_id), with its own voiding if it has
        one; a voiding recorded earlier stays."""

    async def void_event(self, activity_id: str, source: str, event_id: str, voided_by: str) -> None:
        """Mark the source's event as withdrawn, whether or not its entry has arrived yet."""

    async def events(self, activity_id: str) -> list[EventEntry]: ...
    async def dead_letter(self, source: str, event_id: str) -> DeadLetterRecord | None: ...
    async def save_dead_letter(self, record: DeadLetterRecord) -> None: ...
    async def update_dead_letter(self, record: DeadLetterRecord) -> bool:
        """Replace the letter only if it still exists; False when it is gone."""

    async def delete_dead_letter(self, source: str, event_id: str) -> None: ...
    def dead_letters(self) -> AsyncIterator[DeadLetterRecord]: ...
    def deliveries(self) -> AsyncIterator[DeliveryRecord]: ...


def key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:40]


def event_key(source: str, event_id: str) -> str:
    """An event log row key: the source is part of it, so no source can replace another's entry."""
    return key(f"{source}\x1f{event_id}")


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _percentage(value: Any) -> int | None:
    """A stored percentage; -1 is how "none" is written (Table storage has no typed null)."""
    return int(value) if isinstance(value, int) and value >= 0 else None


def _assignment_text(value: AssignmentEntry | None) -> str:
    """An assignment statement as compact JSON ("" for none): [withdrawn, type, assignedAt, dueAt,
    notes, assignerUserId]."""
    if value is None:
        return ""
    return json.dumps(_assignment_list(value), separators=(",", ":"))


def _assignment_list(value: AssignmentEntry) -> list[Any]:
    return [
        value.withdrawn,
        value.assignment_type.value if value.assignment_type else None,
        _iso(value.assigned_at) or None,
        _iso(value.due_at) or None,
        value.notes,
        value.assigner_user_id,
    ]


def _assignment_from(value: Any) -> AssignmentEntry | None:
    if isinstance(value, str):
        value = json.loads(value) if value else None
    if not isinstance(value, list):
        return None
    withdrawn, kind, assigned, due, notes, assigner = value
    return AssignmentEntry(
        bool(withdrawn), AssignmentType.parse(kind), _when(assigned), _when(due), notes, assigner
    )


def _names_assigner(assignment: AssignmentEntry | None, user_id: str) -> bool:
    """Whether the statement names `user_id` (an Entra object id, any case) as its assigner."""
    return assignment is not None and assignment.assigned_by(user_id)


def _without_assigner(entry: EventEntry, user_id: str) -> EventEntry:
    """The entry, without `user_id` as its assignment's assigner (the assignment itself stays)."""
    if entry.assignment is None or not _names_assigner(entry.assignment, user_id):
        return entry
    return replace(entry, assignment=replace(entry.assignment, assigner_user_id=None))


def _row_assignment(state: ActivityState) -> str:
    if state.assignment_type is None:
        return ""
    return _assignment_text(
        AssignmentEntry(
            False, state.assignment_type, state.assigned_at, state.due_at, state.notes, state.assigner_user_id
        )
    )


class TableStateStore:
    """StateStore on Azure Table storage, by connection string or managed identity."""

    def __init__(self, service: TableServiceClient) -> None:
        self._service = service
        self._tables: dict[str, TableClient] = {}

    async def _table(self, name: str) -> TableClient:
        if name not in self._tables:
            from azure.core.exceptions import ResourceExistsError

            with contextlib.suppress(ResourceExistsError):
                await self._service.create_table(name)
            self._tables[name] = self._service.get_table_client(name)
        return self._tables[name]

    async def close(self) -> None:
        for table in self._tables.values():
            await table.close()
        await self._service.close()

    async def _get(self, table: str, partition: str, row: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return await (await self._table(table)).get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    # deliveries -----------------------------------------------------------------------------------

    async def delivery(self, source: str, event_id: str) -> DeliveryRecord | None:
        row = await self._get(DELIVERIES, source, key(event_id))
        return _delivery(row) if row is not None else None

    @staticmethod
    def _delivery_entity(record: DeliveryRecord) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": record.source,
            "RowKey": key(record.event_id),
            "eventId": record.event_id,
            "activityId": record.activity_id,
            "status": record.status,
            "seen": record.seen,
        }
        if record.voided_by:
            entity["voidedBy"] = record.voided_by
        if record.received_at is not None:
            entity["receivedAt"] = _iso(record.received_at)
        if record.learner_found_by:
            entity["learnerFoundBy"] = record.learner_found_by
        return entity

    async def save_delivery(self, record: DeliveryRecord) -> None:
        from azure.data.tables import UpdateMode

        entity = self._delivery_entity(record)
        await (await self._table(DELIVERIES)).upsert_entity(entity, mode=UpdateMode.MERGE)

    async def insert_delivery(self, record: DeliveryRecord) -> DeliveryRecord | None:
        from azure.core.exceptions import ResourceExistsError

        try:
            await (await self._table(DELIVERIES)).create_entity(self._delivery_entity(record))
        except ResourceExistsError:
            return await self.delivery(record.source, record.event_id)
        return None

    async def mark_unapplied(self, source: str, event_id: str, status: str) -> bool:
        """Read, then write only if unchanged (ETag), or create only if absent; again when another
        write came between."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        table = await self._table(DELIVERIES)
        for _ in range(_MARK_ATTEMPTS):
            row = await self._get(DELIVERIES, source, key(event_id))
            if row is None:
                try:
                    await table.create_entity(
                        self._delivery_entity(DeliveryRecord(source, event_id, "", status))
                    )
                except ResourceExistsError:
                    continue
                return True
            if row.get("status") == "applied":
                return False
            try:
                await table.update_entity(
                    {"PartitionKey": source, "RowKey": key(event_id), "status": status},
                    mode=UpdateMode.MERGE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
            return True
        raise Conflict(f"delivery row of {source} kept changing")

    async def void_delivery(self, source: str, event_id: str, voided_by: str) -> None:
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": source, "RowKey": key(event_id), "eventId": event_id, "voidedBy": voided_by}
        await (await self._table(DELIVERIES)).upsert_entity(entity, mode=UpdateMode.MERGE)

    async def deliveries(self) -> AsyncIterator[DeliveryRecord]:
        async for row in (await self._table(DELIVERIES)).list_entities():
            yield _delivery(row)

    # activities and their event logs: one partition per activity -----------------------------------

    async def activity(self, activity_id: str) -> ActivityState | None:
        row = await self._get(ACTIVITIES, key(activity_id), ACTIVITY_ROW)
        return _activity(row) if row is not None else None

    async def load(self, activity_id: str) -> tuple[ActivityState | None, list[EventEntry]]:
        """One query: the row (with the entries it holds) and the partition's other rows (entries
        spilled from the row or added alone, and voidings recorded on their own)."""
        table = await self._table(ACTIVITIES)
        state, rows = None, []
        async for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": key(activity_id)}):
            if row["RowKey"] == ACTIVITY_ROW:
                state = _activity(row)
            else:
                rows.append(row)
        return state, _merged(state.held if state else (), rows)

    def _activity_entity(self, state: ActivityState) -> dict[str, Any]:
        return {
            "PartitionKey": key(state.activity_id),
            "RowKey": ACTIVITY_ROW,
            "activityId": state.activity_id,
            "ownerSource": state.owner.source if state.owner else "",
            "learnerUserId": state.owner.learner_user_id if state.owner else "",
            "courseId": state.owner.course_id if state.owner else "",
            "graphId": state.graph_id or "",
            "status": state.status.value if state.status else "",
            "completionPercentage": state.completion_percentage
            if state.completion_percentage is not None
            else -1,
            "startedAt": _iso(state.started_at),
            "completedAt": _iso(state.completed_at),
            "claimedAt": _iso(state.claimed_at),
            "assignment": _row_assignment(state),
            "log": _log_text(state.held),
            "writes": _writes_text(state.writes),
        }

    async def claim_activity(
        self, activity_id: str, owner: ActivityOwner, entries: Sequence[EventEntry] = ()
    ) -> ActivityState:
        from azure.core.exceptions import ResourceExistsError

        state = ActivityState(activity_id, owner=owner, claimed_at=datetime.now(UTC), held=tuple(entries))
        if _too_big(state.held):
            etag = await self._spill(("create", self._activity_entity(replace(state, held=())), {}), entries)
            return replace(state, etag=etag, held=())
        try:
            metadata = await (await self._table(ACTIVITIES)).create_entity(self._activity_entity(state))
        except ResourceExistsError:
            raise Conflict(activity_id) from None
        return replace(state, etag=metadata["etag"])

    async def save_activity(self, state: ActivityState, entries: Sequence[EventEntry] = ()) -> ActivityState:
        """One row write: new entries join the ones the row holds; when those grow too big, they move
        out to rows of their own in the same transaction (once in many writes)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError
        from azure.data.tables import UpdateMode

        held = _joined(state.held, entries)
        if _too_big(held):
            condition = {"etag": state.etag, "match_condition": MatchConditions.IfNotModified}
            emptied = self._activity_entity(replace(state, held=()))
            etag = await self._spill(("update", emptied, {"mode": UpdateMode.REPLACE, **condition}), held)
            return replace(state, etag=etag, held=())
        try:
            metadata = await (await self._table(ACTIVITIES)).update_entity(
                self._activity_entity(replace(state, held=held)),
                mode=UpdateMode.REPLACE,
                etag=state.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            raise Conflict(state.activity_id) from None
        return replace(state, etag=metadata["etag"], held=held)

    async def _spill(
        self, row_operation: tuple[str, dict[str, Any], dict[str, Any]], entries: Sequence[EventEntry]
    ) -> str:
        """The row's write and its entries as rows of their own, in one transaction (same partition):
        the log never holds an entry whose row write lost, nor the reverse. The row's new ETag."""
        from azure.core.exceptions import HttpResponseError
        from azure.data.tables import UpdateMode

        log_key = row_operation[1]["PartitionKey"]
        operations: list[Any] = [row_operation]
        operations += [
            ("upsert", self._entry_entity(log_key, entry), {"mode": UpdateMode.MERGE}) for entry in entries
        ]
        try:
            results = await (await self._table(ACTIVITIES)).submit_transaction(operations)
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):  # created meanwhile / ETag moved
                raise Conflict(log_key) from None
            raise
        return str(results[0]["etag"])

    async def add_event(self, activity_id: str, entry: EventEntry) -> None:
        from azure.data.tables import UpdateMode

        # MERGE keeps a voidedBy written earlier (a voiding statement may arrive before its target).
        entity = self._entry_entity(key(activity_id), entry)
        await (await self._table(ACTIVITIES)).upsert_entity(entity, mode=UpdateMode.MERGE)

    @staticmethod
    def _entry_entity(log_key: str, entry: EventEntry) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": log_key,
            "RowKey": event_key(entry.source, entry.event_id),
            "source": entry.source,
            "eventId": entry.event_id,
            "occurredAt": _iso(entry.occurred_at),
            "status": entry.status.value,
            "completionPercentage": entry.completion_percentage
            if entry.completion_percentage is not None
            else -1,
            "startedAt": _iso(entry.started_at),
            "completedAt": _iso(entry.completed_at),
        }
        if entry.voided_by:  # withdrawn before it arrived
            entity["voidedBy"] = entry.voided_by
        if entry.assignment is not None:
            entity["assignment"] = _assignment_text(entry.assignment)
        return entity

    async def void_event(self, activity_id: str, source: str, event_id: str, voided_by: str) -> None:
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": key(activity_id),
            "RowKey": event_key(source, event_id),
            "source": source,
            "eventId": event_id,
            "voidedBy": voided_by,
        }
        await (await self._table(ACTIVITIES)).upsert_entity(entity, mode=UpdateMode.MERGE)

    async def events(self, activity_id: str) -> list[EventEntry]:
        return (await self.load(activity_id))[1]

    # dead letters ---------------------------------------------------------------------------------

    async def dead_letter(self, source: str, event_id: str) -> DeadLetterRecord | None:
        row = await self._get(DEADLETTERS, source, key(event_id))
        return _letter(row) if row is not None else None

    @staticmethod
    def _letter_entity(record: DeadLetterRecord) -> dict[str, Any]:
        entity = {
            "PartitionKey": record.source,
            "RowKey": key(record.event_id),
            "eventId": record.event_id,
            "state": record.state.value,
            "reason": record.reason,
            "detail": record.detail,
            "attempts": record.attempts,
            "firstFailure": _iso(record.first_failure),
            "lastFailure": _iso(record.last_failure),
            "nextAttempt": _iso(record.next_attempt),
            "graphErrorCode": record.graph_error_code or "",
            "activityId": record.activity_id or "",
        }
        return entity | _message_parts(record.message)

    async def save_dead_letter(self, record: DeadLetterRecord) -> None:
        from azure.data.tables import UpdateMode

        entity = self._letter_entity(record)
        await (await self._table(DEADLETTERS)).upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def update_dead_letter(self, record: DeadLetterRecord) -> bool:
        """Replace the letter only if it still exists; False when it is gone (its event was applied
        meanwhile: writing it again would bring back a letter that stands for nothing)."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            await (await self._table(DEADLETTERS)).update_entity(
                self._letter_entity(record), mode=UpdateMode.REPLACE
            )
        except ResourceNotFoundError:
            return False
        return True

    async def delete_dead_letter(self, source: str, event_id: str) -> None:
        await (await self._table(DEADLETTERS)).delete_entity(source, key(event_id))

    async def dead_letters(self, *, brief: bool = False) -> AsyncIterator[DeadLetterRecord]:
        """Every dead letter; `brief` leaves out the original message and the details (what `status`
        needs is a few small columns of each)."""
        select = ["PartitionKey", "eventId", "state", "reason", "attempts", "firstFailure", "lastFailure"]
        async for row in (await self._table(DEADLETTERS)).list_entities(select=select if brief else None):
            yield _letter(row)

    # daily maintenance passes: where each stands ---------------------------------------------------

    async def job_checkpoint(self, name: str) -> JobCheckpoint | None:
        row = await self._get(JOBS, "job", name)
        if row is None:
            return None
        occurrence = _when(row.get("occurrence"))
        assert occurrence is not None
        return JobCheckpoint(
            name,
            occurrence,
            bool(row.get("finished")),
            row.get("cursor") or None,
            {k: int(v) for k, v in json.loads(row.get("counts") or "{}").items()},
            int(row.get("runs", 0)),
        )

    async def save_job_checkpoint(self, checkpoint: JobCheckpoint) -> None:
        entity = {
            "PartitionKey": "job",
            "RowKey": checkpoint.name,
            "occurrence": _iso(checkpoint.occurrence),
            "finished": checkpoint.finished,
            "cursor": checkpoint.cursor or "",
            "counts": json.dumps(checkpoint.counts),
            "runs": checkpoint.runs,
        }
        await (await self._table(JOBS)).upsert_entity(entity)

    # maintenance: operators' commands (forget, reconcile), never the queue's hot path ---------------

    async def all_activities(self) -> AsyncIterator[ActivityState]:
        rows = (await self._table(ACTIVITIES)).query_entities(
            "RowKey eq @row", parameters={"row": ACTIVITY_ROW}
        )
        async for row in rows:
            yield _activity(row)

    async def event_keys(self, activity_id: str) -> list[tuple[str, str]]:
        """(source, eventId) of every entry of the activity's log, voidings recorded alone included."""
        table = await self._table(ACTIVITIES)
        keys: dict[tuple[str, str], None] = {}
        async for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": key(activity_id)}):
            if row["RowKey"] == ACTIVITY_ROW:
                keys.update(((e.source, e.event_id), None) for e in _held(row.get("log")))
            else:
                keys[(row.get("source", ""), row["eventId"])] = None
        return list(keys)

    async def delete_event(self, activity_id: str, source: str, event_id: str) -> None:
        await (await self._table(ACTIVITIES)).delete_entity(key(activity_id), event_key(source, event_id))

    async def delete_delivery(self, source: str, event_id: str) -> None:
        await (await self._table(DELIVERIES)).delete_entity(source, key(event_id))

    async def delete_activity(self, activity_id: str) -> None:
        await (await self._table(ACTIVITIES)).delete_entity(key(activity_id), ACTIVITY_ROW)

    async def assigner_activities(self, user_id: str) -> AsyncIterator[str]:
        """The activities whose row or event log names `user_id` as an assignment's assigner: one scan
        of the table, reading only the assignment columns (entry rows name their activity by its
        partition: the activity row of that partition gives its id)."""
        table = await self._table(ACTIVITIES)
        ids: dict[str, str] = {}
        naming: set[str] = set()
        columns = ["PartitionKey", "RowKey", "activityId", "assignment", "log"]
        async for row in table.list_entities(select=columns):
            partition = row["PartitionKey"]
            if row["RowKey"] == ACTIVITY_ROW:
                ids[partition] = row["activityId"]
                if _names_assigner(_assignment_from(row.get("assignment")), user_id) or any(
                    _names_assigner(e.assignment, user_id) for e in _held(row.get("log"))
                ):
                    naming.add(partition)
            elif _names_assigner(_assignment_from(row.get("assignment")), user_id):
                naming.add(partition)
        for partition in sorted(naming):
            if partition in ids:  # entries left without their activity row name nobody's record
                yield ids[partition]

    async def scrub_assigner(self, activity_id: str, user_id: str) -> int:
        """Take `user_id` out of every entry of the activity's log that names them as assigner, in
        place (the activity row's held entries and rows of their own, retention baselines included),
        each write guarded by the ETag read; how many entries named them. The row's own state (what
        was last written to Graph) is left as it is. Conflict when a row changed meanwhile."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        table = await self._table(ACTIVITIES)
        scrubbed = 0
        async for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": key(activity_id)}):
            if row["RowKey"] == ACTIVITY_ROW:
                held = _held(row.get("log"))
                kept = tuple(_without_assigner(e, user_id) for e in held)
                changed = sum(a != b for a, b in zip(held, kept, strict=True))
                update = {"log": _log_text(kept)}
            else:
                assignment = _assignment_from(row.get("assignment"))
                changed = int(_names_assigner(assignment, user_id))
                if assignment is not None:
                    update = {"assignment": _assignment_text(replace(assignment, assigner_user_id=None))}
            if not changed:
                continue
            try:
                await table.update_entity(
                    {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], **update},
                    mode=UpdateMode.MERGE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                raise Conflict(activity_id) from None
            scrubbed += changed
        return scrubbed

    # retention: the daily timer and `compact`, never the queue's hot path --------------------------

    async def purge_deliveries(
        self,
        cutoff: datetime,
        *,
        dry_run: bool,
        keep: Collection[tuple[str, str]] = (),
        stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Remove delivery rows last written before `cutoff`, except those recording a voiding and
        those of the events named in `keep` (source, eventId); how many (would) go. Stops early when
        `stop()` says so (what is left is still old: the next run removes it)."""
        table = await self._table(DELIVERIES)
        rows = table.query_entities(
            "Timestamp lt @cutoff",
            parameters={"cutoff": cutoff},
            select=["PartitionKey", "RowKey", "eventId", "voidedBy"],
        )
        kept = {(source, key(event_id)) for source, event_id in keep}
        old = (
            (row["PartitionKey"], row["RowKey"])
            async for row in rows
            if not row.get("voidedBy") and (row["PartitionKey"], row["RowKey"]) not in kept
        )
        return await _delete_as_found(table, old, dry_run=dry_run, stop=stop)

    async def purge_dead_letters(
        self, cutoff: datetime, *, dry_run: bool, stop: Callable[[], bool] = lambda: False
    ) -> int:
        table = await self._table(DEADLETTERS)
        rows = table.query_entities(
            "state ne @parked",
            parameters={"parked": LetterState.PARKED.value},
            select=["PartitionKey", "RowKey", "lastFailure"],
        )
        old = (
            (row["PartitionKey"], row["RowKey"])
            async for row in rows
            if (last := _when(row.get("lastFailure"))) is not None and last < cutoff
        )
        return await _delete_as_found(table, old, dry_run=dry_run, stop=stop)

    def log_key(self, activity_id: str) -> str:
        return key(activity_id)

    async def old_logs(self, cutoff: datetime, after: str | None = None) -> AsyncIterator[str]:
        """The keys of the logs holding a row last written before `cutoff`, in key order (each once),
        from the key after `after` on (a retention run that stopped goes on from there)."""
        table = await self._table(ACTIVITIES)
        query, parameters = "Timestamp lt @cutoff", dict[str, Any](cutoff=cutoff)
        if after is not None:
            query, parameters = query + " and PartitionKey gt @after", {**parameters, "after": after}
        rows = table.query_entities(query, parameters=parameters, select=["PartitionKey"])
        previous = None
        async for row in rows:  # ordered by partition: each log once
            if row["PartitionKey"] != previous:
                previous = row["PartitionKey"]
                yield previous

    async def log_snapshot(self, log_key: str) -> LogSnapshot:
        """Every copy of every key of the log (one query): the entries the activity row holds, and the
        rows of their own, each with when it was last written."""
        table = await self._table(ACTIVITIES)
        activity, copies = None, []
        async for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": log_key}):
            written = row.metadata.get("timestamp")
            if row["RowKey"] == ACTIVITY_ROW:
                activity = _activity(row)
                copies += [
                    LogCopy(e.source, e.event_id, e, written, e.voided_by, held=True) for e in activity.held
                ]
                continue
            entry = _entry(row)
            voided = row.get("voidedBy") or None
            copies.append(LogCopy(row.get("source", ""), row["eventId"], entry, written, voided, False, row))
        return LogSnapshot(log_key, activity, tuple(copies))

    async def fold_log(
        self,
        snapshot: LogSnapshot,
        folded: Sequence[LogCopy],
        combine: Callable[[Sequence[EventEntry]], EventEntry],
    ) -> None:
        """Replace the `folded` copies with one entry, `combine` of theirs, as nothing but a row of its
        own under a new key (so it never meets another baseline's key), in transactions of at most 100
        operations (one partition). Each transaction deletes its copies only if they are unchanged since
        the snapshot (ETags; the activity row's too when entries it holds are folded) and writes the
        entry that folds them and everything folded before: whenever it stops, the log folds as before.
        Conflict when anything changed meanwhile (the next run tries again)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.data.tables import UpdateMode

        table = await self._table(ACTIVITIES)
        held = [c for c in folded if c.held]
        rows = [c for c in folded if not c.held]
        first: list[Any] = []
        entries: list[EventEntry] = [c.entry for c in held if c.entry is not None]
        if held:
            row = snapshot.activity
            assert row is not None  # held copies come from the activity row
            keys = {c.key for c in held}
            kept = tuple(e for e in row.held if (e.source, e.event_id) not in keys)
            condition = {"etag": row.etag, "match_condition": MatchConditions.IfNotModified}
            first = [
                (
                    "update",
                    self._activity_entity(replace(row, held=kept)),
                    {"mode": UpdateMode.REPLACE, **condition},
                )
            ]
        previous: tuple[dict[str, Any], str] | None = None
        for start in range(0, max(len(rows), 1), FOLD_CHUNK):
            chunk = rows[start : start + FOLD_CHUNK]
            entries += [c.entry for c in chunk if c.entry is not None]
            current = combine(entries)
            entity = self._entry_entity(snapshot.log_key, current)
            operations: list[Any] = [("create", entity)]
            if previous is not None:
                operations.append(
                    (
                        "delete",
                        previous[0],
                        {"etag": previous[1], "match_condition": MatchConditions.IfNotModified},
                    )
                )
            operations += first
            operations += [_guarded_delete(c.handle) for c in chunk]
            try:
                results = await table.submit_transaction(operations)
            except HttpResponseError:  # a copy changed or went since the snapshot (TableTransactionError too)
                raise Conflict(snapshot.log_key) from None
            previous, first, entries = (entity, str(results[0]["etag"])), [], [current]

    async def table_sizes(self) -> dict[str, int]:
        """Rows per table; `events` counts entries, those an activity row holds included."""
        sizes = {"deliveries": 0, "activities": 0, "events": 0, "deadletters": 0}
        for name, table in (("deliveries", DELIVERIES), ("deadletters", DEADLETTERS)):
            sizes[name] = sum([1 async for _ in (await self._table(table)).list_entities(select=["RowKey"])])
        async for row in (await self._table(ACTIVITIES)).list_entities(select=["RowKey", "log"]):
            if row["RowKey"] == ACTIVITY_ROW:
                sizes["activities"] += 1
                sizes["events"] += len(_held(row.get("log")))
            else:
                sizes["events"] += 1
        return sizes


def _guarded_delete(row: Any) -> tuple[str, Any, dict[str, Any]]:
    """A transaction's delete of a row read earlier, only if it is unchanged since."""
    from azure.core import MatchConditions

    return ("delete", row, {"etag": row.metadata["etag"], "match_condition": MatchConditions.IfNotModified})


def _activity(row: Any) -> ActivityState:
    assignment = _assignment_from(row.get("assignment")) or AssignmentEntry()
    return ActivityState(
        activity_id=row["activityId"],
        owner=_owner(row),
        graph_id=row.get("graphId") or None,
        status=CourseStatus.parse(row.get("status")),
        completion_percentage=_percentage(row.get("completionPercentage")),
        started_at=_when(row.get("startedAt")),
        completed_at=_when(row.get("completedAt")),
        claimed_at=_when(row.get("claimedAt")),
        etag=row.metadata["etag"],
        held=_held(row.get("log")),
        writes=_writes(row.get("writes")),
        assignment_type=assignment.assignment_type,
        assigned_at=assignment.assigned_at,
        due_at=assignment.due_at,
        notes=assignment.notes,
        assigner_user_id=assignment.assigner_user_id,
    )


#: How many entries the activity row holds before they move to rows of their own, and how long their
#: text may grow (a Table string property holds 64 KiB, i.e. 32 K UTF-16 characters).
HELD_ENTRIES = 64
HELD_CHARACTERS = 24_000
#: Rows one fold transaction deletes: a transaction holds 100 operations, and two more are the entry
#: that folds them and the previous one (or the activity row).
FOLD_CHUNK = 98


def _joined(held: Sequence[EventEntry], entries: Sequence[EventEntry]) -> tuple[EventEntry, ...]:
    """`entries` added to the held ones, as `add_event` would: a voiding recorded earlier stays."""
    by_key = {(e.source, e.event_id): e for e in held}
    for entry in entries:
        previous = by_key.get((entry.source, entry.event_id))
        voided = entry.voided_by or (previous.voided_by if previous else None)
        by_key[(entry.source, entry.event_id)] = replace(entry, voided_by=voided)
    return tuple(by_key.values())


def _too_big(held: Sequence[EventEntry]) -> bool:
    return len(held) > HELD_ENTRIES or len(_log_text(held)) > HELD_CHARACTERS


def _log_text(held: Sequence[EventEntry]) -> str:
    """Compact JSON (one array per entry): parsing it costs far less than a Table row per entry."""
    if not held:
        return ""
    return json.dumps(
        [
            [
                e.source,
                e.event_id,
                _iso(e.occurred_at),
                e.status.value,
                e.completion_percentage,
                _iso(e.started_at),
                _iso(e.completed_at),
                e.voided_by,
                *([_assignment_list(e.assignment)] if e.assignment is not None else []),
            ]
            for e in held
        ],
        separators=(",", ":"),
    )


def _writes_text(writes: Sequence[GraphWrite]) -> str:
    """The write history as compact JSON: [request, at, status, reason, cause] each."""
    if not writes:
        return ""
    return json.dumps(
        [[w.request, _iso(w.at), w.status, w.reason, w.cause] for w in writes], separators=(",", ":")
    )


def _writes(text: Any) -> tuple[GraphWrite, ...]:
    """The write history a row holds. It is not state (only what `trace` shows), so what cannot be read
    is left out rather than failing the row's every read: an item with more members (a newer version
    wrote it) gives its first five, an item cut short or of another shape, or a value that is no JSON,
    gives nothing."""
    if not isinstance(text, str) or not text:
        return ()
    try:
        items = json.loads(text)
    except ValueError:
        log.warning("an activity row's write history is not JSON: left out")
        return ()
    writes = []
    for item in items if isinstance(items, list) else ():
        try:
            request, at, status, reason, cause = item[:5]
            moment = _when(at)
        except (TypeError, ValueError, KeyError):
            continue
        if moment is not None and isinstance(request, str):
            writes.append(
                GraphWrite(
                    request,
                    moment,
                    status if isinstance(status, int) else None,
                    reason if isinstance(reason, str) else None,
                    cause if isinstance(cause, str) else "",
                )
            )
    return tuple(writes)


def _held(text: Any) -> tuple[EventEntry, ...]:
    if not isinstance(text, str) or not text:
        return ()
    entries = []
    for item in json.loads(text):
        source, event_id, occurred, status, percentage, started, completed, voided = item[:8]
        entries.append(
            EventEntry(
                source,
                event_id,
                datetime.fromisoformat(occurred),
                CourseStatus(status),
                percentage,
                _when(started),
                _when(completed),
                voided,
                _assignment_from(item[8]) if len(item) > 8 else None,
            )
        )
    return tuple(entries)


def _merged(held: Sequence[EventEntry], rows: list[Any]) -> list[EventEntry]:
    """The held entries and the rows' ones, by key; a voiding recorded in a row of its own applies to
    the entry of that key wherever it is held, and stands as a tombstone when there is none yet."""
    by_key = {(e.source, e.event_id): e for e in held}
    voidings = {}
    for row in rows:
        entry = _entry(row)
        row_key = (row.get("source", ""), row.get("eventId", ""))
        if entry is not None:
            by_key.setdefault(row_key, entry)
        if row.get("voidedBy"):
            voidings[row_key] = row["voidedBy"]
    for (source, event_id), voided_by in voidings.items():
        if (source, event_id) not in by_key:
            by_key[(source, event_id)] = EventEntry.tombstone(source, event_id, voided_by)
    return [
        replace(e, voided_by=voidings[k]) if k in voidings and e.voided_by is None else e
        for k, e in by_key.items()
    ]


def _entry(row: Any) -> EventEntry | None:
    """An event-log row as an entry; None for a voiding recorded before its event arrived."""
    status = CourseStatus.parse(row.get("status"))
    occurred = _when(row.get("occurredAt"))
    if status is None or occurred is None:
        return None
    return EventEntry(
        source=row.get("source", ""),
        event_id=row["eventId"],
        occurred_at=occurred,
        status=status,
        completion_percentage=_percentage(row.get("completionPercentage")),
        started_at=_when(row.get("startedAt")),
        completed_at=_when(row.get("completedAt")),
        voided_by=row.get("voidedBy") or None,
        assignment=_assignment_from(row.get("assignment")),
    )


async def _delete_as_found(
    table: TableClient,
    keys: AsyncIterator[tuple[str, str]],
    *,
    dry_run: bool,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Delete rows by (PartitionKey, RowKey) while they are being found, one transaction per partition
    and 100 rows; how many were deleted (or had gone meanwhile, or would go: `dry_run`). `stop()` is
    asked between pages of the query, and what was found by then is deleted first: each run makes
    progress, however large the table (one that first read every old row, then deleted, could spend
    its whole budget reading, delete nothing, and do the same every day)."""
    pending: dict[str, list[str]] = {}
    found = done = 0
    async for partition, row in keys:
        pending.setdefault(partition, []).append(row)
        found += 1
        if found % _TRANSACTION_ROWS == 0:
            done += await _delete_pending(table, pending, dry_run)
        if stop():
            break
    return done + await _delete_pending(table, pending, dry_run)


async def _delete_pending(table: TableClient, pending: dict[str, list[str]], dry_run: bool) -> int:
    done = 0
    for partition, rows in pending.items():
        for start in range(0, len(rows), _TRANSACTION_ROWS):
            done += await _delete_rows(table, partition, rows[start : start + _TRANSACTION_ROWS], dry_run)
    pending.clear()
    return done


#: Operations in one table transaction (an entity group transaction takes at most 100).
_TRANSACTION_ROWS = 100


async def _delete_rows(table: TableClient, partition: str, rows: list[str], dry_run: bool) -> int:
    """One transaction deleting `rows` of one partition; when one of them went meanwhile the rest
    go one by one."""
    from azure.core.exceptions import HttpResponseError

    if dry_run:
        return len(rows)
    try:
        await table.submit_transaction(
            [("delete", {"PartitionKey": partition, "RowKey": row}) for row in rows]
        )
    except HttpResponseError:
        for row in rows:
            with contextlib.suppress(HttpResponseError):
                await table.delete_entity(partition, row)
    return len(rows)


def _owner(row: Any) -> ActivityOwner | None:
    if not row.get("learnerUserId"):
        return None
    return ActivityOwner(row.get("ownerSource", ""), row["learnerUserId"], row.get("courseId", ""))


def _delivery(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        source=row["PartitionKey"],
        event_id=row["eventId"],
        activity_id=row.get("activityId", ""),
        status=row.get("status", "voided"),  # only a voiding has been recorded
        seen=int(row.get("seen", 0)),
        voided_by=row.get("voidedBy") or None,
        received_at=_when(row.get("receivedAt")),
        learner_found_by=row.get("learnerFoundBy") or None,
    )


#: A Table string property holds at most 64 KiB (32K UTF-16 code units); a queue message may be
#: longer (an invalid one put by hand: 64 KiB of text). A letter's message is kept in parts, each of
#: at most 16,000 characters (32,000 code units even if every character needs two).
_MESSAGE_PART = 16_000
_MESSAGE_PROPERTIES = ("message", *(f"message{n}" for n in range(1, 8)))


def _message_parts(message: str) -> dict[str, str]:
    """The message's properties: `message`, then `message1`... as many as it needs (a letter kept in
    fewer parts than before has its old parts removed: letters are written whole, REPLACE)."""
    parts = [message[i : i + _MESSAGE_PART] for i in range(0, len(message), _MESSAGE_PART)] or [""]
    if len(parts) > len(_MESSAGE_PROPERTIES):  # beyond any queue message (64 KiB): keep the head
        parts = parts[: len(_MESSAGE_PROPERTIES)]
    return dict(zip(_MESSAGE_PROPERTIES, parts, strict=False))


def _letter(row: Any) -> DeadLetterRecord:
    first = _when(row.get("firstFailure"))
    last = _when(row.get("lastFailure"))
    assert first is not None
    assert last is not None
    return DeadLetterRecord(
        source=row["PartitionKey"],
        event_id=row["eventId"],
        state=LetterState(row["state"]),
        reason=row["reason"],
        detail=row.get("detail", ""),
        message="".join(row.get(name, "") for name in _MESSAGE_PROPERTIES),
        attempts=int(row.get("attempts", 1)),
        first_failure=first,
        last_failure=last,
        next_attempt=_when(row.get("nextAttempt")),
        graph_error_code=row.get("graphErrorCode") or None,
        activity_id=row.get("activityId") or None,
    )
