"""In-memory stand-ins for the two seams unit tests cross: the queue and Graph.

End-to-end tests use the real things (Azurite, msgraph-sdk against the sandbox); these fakes only
let unit tests pin down the logic on each side of those seams.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from shared.events.identity import ActivityOwner
from shared.events.model import CourseStatus
from shared.graph.errors import GraphError
from shared.graph.gateway import MAX_BATCH, ActivityRecord, ActivityWrite, ContentWrite
from shared.state.models import (
    ActivityState,
    AssignmentEntry,
    DeadLetterRecord,
    DeliveryRecord,
    EventEntry,
    JobCheckpoint,
    LetterState,
    LogCopy,
    LogSnapshot,
)
from shared.state.store import Conflict
from shared.storage.queues import QueueUnavailable, ReceivedMessage

T = TypeVar("T")


class FakeQueue:
    """Sends are recorded (`sent`, `delayed`); `stored` holds messages to receive, as their raw text
    (`put_raw`), each leased by `receive` until `expire_leases()` or deleted."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: dict[str, list[str]] = defaultdict(list)
        self.delayed: dict[str, list[tuple[str, float]]] = defaultdict(list)
        self.stored: dict[str, list[ReceivedMessage]] = defaultdict(list)
        self.leased: set[str] = set()
        self.fail = fail

    def put_raw(self, queue: str, content: str) -> None:
        self.stored[queue].append(ReceivedMessage(uuid.uuid4().hex, "", content, 0))

    def receive(self, queue: str, max_messages: int, lease_seconds: int) -> list[ReceivedMessage]:
        if self.fail:
            raise QueueUnavailable("queue down")
        taken: list[ReceivedMessage] = []
        for index, message in enumerate(self.stored[queue]):
            if len(taken) < max_messages and message.id not in self.leased:
                message = replace(
                    message, pop_receipt=uuid.uuid4().hex, dequeue_count=message.dequeue_count + 1
                )
                self.stored[queue][index] = message
                self.leased.add(message.id)
                taken.append(message)
        return taken

    def delete(self, queue: str, message: ReceivedMessage) -> None:
        if self.fail:
            raise QueueUnavailable("queue down")
        self.stored[queue] = [m for m in self.stored[queue] if m.pop_receipt != message.pop_receipt]

    def expire_leases(self) -> None:
        self.leased.clear()

    def send_all(self, queue: str, messages: Sequence[str]) -> None:
        if self.fail:
            raise QueueUnavailable("queue down")
        self.sent[queue].extend(messages)

    def send_later(self, queue: str, message: str, delay_seconds: float) -> None:
        if self.fail:
            raise QueueUnavailable("queue down")
        self.delayed[queue].append((message, delay_seconds))


class FakeGraph:
    """Graph as the bridge's gateway sees it, in memory. It must behave as the sandbox does (which
    speaks for Graph's documentation): tests/contract runs the same cases against both.

    Records every call; `errors` maps a method name to exceptions raised on its next calls (`"batch"`:
    on the next batches as a whole), `errors_for` a method name and key (an external id) to exceptions
    raised on its next calls for that key only. `batches` lists each batch sent: its method and size.
    """

    def __init__(self) -> None:
        self.users_by_upn: dict[str, str] = {}
        self.users_by_mail: dict[str, str] = {}
        self.users_by: dict[tuple[str, str], str] = {}  # (attribute, value) -> id, other attributes
        self.contents: dict[str, str] = {}
        self.content_docs: dict[str, ContentWrite] = {}  # what put_content wrote, by external id
        self.activities: dict[str, ActivityRecord] = {}
        self.sync_enabled = True
        #: The tenant's plan, learners without a licence (ids, any case) and content ids another
        #: provider created: the sandbox's /_sandbox/tenant and its ERROR_CODES rules.
        self.service_plan = True
        self.unlicensed: set[str] = set()
        self.foreign_contents: set[str] = set()
        #: False: the registration id names no provider of the tenant (ERROR_CODES' 400).
        self.provider_registered = True
        self.calls: list[str] = []
        self.errors: dict[str, list[Exception]] = defaultdict(list)
        self.errors_for: dict[tuple[str, str], list[Exception]] = defaultdict(list)
        self.batches: list[tuple[str, int]] = []

    def _enter(self, name: str, key: str | None = None) -> None:
        self.calls.append(name)
        if key is not None and self.errors_for[(name, key)]:
            raise self.errors_for[(name, key)].pop(0)
        if self.errors[name]:
            raise self.errors[name].pop(0)

    async def _batch(self, name: str, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T | GraphError]:
        """As the sandbox runs a JSON batch: at most MAX_BATCH requests (400 otherwise), each one as if
        sent alone, its failure its own answer."""
        if not calls:
            return []
        self.batches.append((name, len(calls)))
        if self.errors["batch"]:
            raise self.errors["batch"].pop(0)
        if len(calls) > MAX_BATCH:
            raise GraphError(400, "BadRequest", f"A batch holds at most {MAX_BATCH} requests.")
        answers: list[T | GraphError] = []
        for call in calls:
            try:
                answers.append(await call())
            except GraphError as exc:
                answers.append(exc)
        return answers

    async def get_activities(self, external_ids: Sequence[str]) -> list[ActivityRecord | GraphError | None]:
        return await self._batch("get_activity", [partial(self.get_activity, e) for e in external_ids])

    async def find_content_ids(self, external_ids: Sequence[str]) -> list[str | GraphError | None]:
        return await self._batch("find_content_id", [partial(self.find_content_id, e) for e in external_ids])

    async def put_contents(self, contents: Sequence[tuple[str, ContentWrite]]) -> list[str | GraphError]:
        return await self._batch("put_content", [partial(self.put_content, e, c) for e, c in contents])

    def _known_users(self) -> set[str]:
        ids = {*self.users_by_upn.values(), *self.users_by_mail.values(), *self.users_by.values()}
        return {i.casefold() for i in ids}

    def _check_plan(self, method: str) -> None:
        if not self.provider_registered:
            raise GraphError(
                400,
                "BadRequest",
                "There was an issue with your request. Make sure the registrationId you entered is valid "
                "or registered for your tenant.",
            )
        if not self.service_plan:
            adequate = "a service plan adequate" if method == "DELETE" else "an adequate service plan"
            raise GraphError(403, "Forbidden", f"You don't have {adequate} for this request.")

    def _check_licence(self, learner_user_id: str, method: str) -> None:
        if learner_user_id.casefold() in {u.casefold() for u in self.unlicensed}:
            spelled = "is not" if method == "PATCH" else "isn't"
            raise GraphError(403, "Forbidden", f"The user license {spelled} valid to perform the operation")

    def _check_write(self, fields: ActivityWrite, method: str) -> None:
        self._check_plan(method)
        if not self.sync_enabled:
            raise GraphError(400, "BadRequest", "This provider isn't enabled for the given tenant.")
        valid: tuple[CourseStatus, ...] = (CourseStatus.IN_PROGRESS, CourseStatus.COMPLETED)
        if fields.assignment_type is not None:  # notStarted is valid on an assignment
            valid = (CourseStatus.NOT_STARTED, *valid)
            if fields.started_at is not None or "started_at" in fields.clear:
                raise GraphError(400, "BadRequest", "learningAssignment has no startedDateTime.")
        if fields.status not in valid:
            raise GraphError(400, "BadRequest", f"status {fields.status} is not valid")
        percentage = fields.completion_percentage
        if percentage is not None and not 0 <= percentage <= 100:
            raise GraphError(400, "BadRequest", "completionPercentage must be between 0 and 100.")

    async def find_user_id_by_upn(self, upn: str) -> str | None:
        """GET /users/{id | userPrincipalName}."""
        self._enter("find_user_id_by_upn")
        found = self.users_by_upn.get(upn.casefold())
        if found is None and upn.casefold() in self._known_users():
            return next(
                i
                for i in (*self.users_by_upn.values(), *self.users_by_mail.values(), *self.users_by.values())
                if i.casefold() == upn.casefold()
            )
        return found

    async def find_user_id_by(self, attribute: str, value: str) -> str | None:
        self._enter(f"find_user_id_by:{attribute}")
        if attribute == "mail":
            return self.users_by_mail.get(value.casefold())
        if attribute == "userPrincipalName":
            return self.users_by_upn.get(value.casefold())
        if attribute == "otherMails":
            return self.users_by.get((attribute, value.casefold()))
        return self.users_by.get((attribute, value))

    async def find_content_id(self, external_id: str) -> str | None:
        self._enter("find_content_id", external_id)
        return self.contents.get(external_id)

    async def first_content_id(self) -> str | None:
        self._enter("first_content_id")
        return next(iter(self.contents.values()), None)

    async def put_content(self, external_id: str, content: ContentWrite) -> str:
        self._enter("put_content", external_id)
        if external_id not in self.contents and not (
            content.title and content.content_web_url and content.language_tag
        ):
            raise GraphError(400, "BadRequest", "title, contentWebUrl and languageTag are required.")
        content_id = self.contents.setdefault(external_id, f"content-{uuid.uuid4()}")
        self.content_docs[external_id] = content
        return content_id

    async def get_activity(self, external_id: str) -> ActivityRecord | None:
        self._enter("get_activity", external_id)
        self._check_plan("GET")
        return self.activities.get(external_id)

    async def create_activity(
        self, external_id: str, learner_user_id: str, content_id: str, fields: ActivityWrite
    ) -> ActivityRecord:
        self._enter("create_activity")
        self._check_write(fields, "POST")
        if learner_user_id.casefold() not in self._known_users():
            raise GraphError(404, "NotFound", "User was not found.")
        if content_id in self.foreign_contents:
            raise GraphError(
                403,
                "Forbidden",
                "The provider isn't valid to create course activity for the given learning content",
            )
        if content_id not in self.contents.values():
            raise GraphError(404, "NotFound", "Learning content was not found.")
        self._check_licence(learner_user_id, "POST")
        if external_id in self.activities:
            raise GraphError(409, "Conflict", "exists")
        record = ActivityRecord(
            id=str(uuid.uuid4()),
            external_id=external_id,
            learner_user_id=learner_user_id,
            learning_content_id=content_id,
            status=fields.status,
            completion_percentage=fields.completion_percentage,
            started_at=fields.started_at,
            completed_at=fields.completed_at,
            assignment_type=fields.assignment_type,
            assigned_at=fields.assigned_at,
            due_at=fields.due_at,
            notes=fields.notes,
            assigner_user_id=fields.assigner_user_id,
        )
        self.activities[external_id] = record
        return record

    def _by_id(self, activity_id: str) -> tuple[str, ActivityRecord]:
        found = next(((k, r) for k, r in self.activities.items() if r.id == activity_id), None)
        if found is None:
            raise GraphError(404, "notFound", f"The requested assignment {activity_id} doesn't exist.")
        return found

    async def update_activity(self, activity_id: str, fields: ActivityWrite) -> None:
        self._enter("update_activity")
        self._check_write(fields, "PATCH")
        key, record = self._by_id(activity_id)
        self._check_licence(record.learner_user_id, "PATCH")
        # As the sandbox: a PATCH cannot change @odata.type. The gateway never sends an assignment's
        # assignmentType or assignerUserId in a PATCH (the Update page lists neither): they stay.
        if (fields.assignment_type is None) != (record.assignment_type is None):
            raise GraphError(400, "BadRequest", "@odata.type must equal the record's type.")
        fixed = ("clear", "assignment_type", "assigner_user_id")
        changes: dict[str, Any] = {k: v for k, v in vars(fields).items() if v is not None and k not in fixed}
        changes.update(dict.fromkeys(fields.clear))
        self.activities[key] = replace(record, **changes)

    async def delete_activity(self, activity_id: str) -> bool:
        self._enter("delete_activity")
        self._check_plan("DELETE")
        if not self.sync_enabled:
            raise GraphError(400, "BadRequest", "This provider isn't enabled for the given tenant.")
        found = next((k for k, r in self.activities.items() if r.id == activity_id), None)
        if found is None:
            return False
        del self.activities[found]
        return True


class MemoryStateStore:
    """StateStore in memory, with the same conditional-write rules as the table implementation."""

    def __init__(self) -> None:
        self.deliveries_by_key: dict[tuple[str, str], DeliveryRecord] = {}
        self.activities: dict[str, ActivityState] = {}
        self.event_log: dict[str, dict[tuple[str, str], EventEntry]] = defaultdict(dict)
        self.voids: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)
        self.letters: dict[tuple[str, str], DeadLetterRecord] = {}
        self.jobs: dict[str, JobCheckpoint] = {}
        #: When each delivery ("d", source, eventId) and log entry ("e", activity, source, eventId)
        #: was last written: Table storage's Timestamp, which retention goes by.
        self.written: dict[tuple[str, ...], datetime] = {}
        self._etag = 0

    def _next_etag(self) -> str:
        self._etag += 1
        return f"W/{self._etag}"

    async def delivery(self, source: str, event_id: str) -> DeliveryRecord | None:
        return self.deliveries_by_key.get((source, event_id))

    async def save_delivery(self, record: DeliveryRecord) -> None:
        self._keep(record)

    def _keep(self, record: DeliveryRecord) -> None:
        previous = self.deliveries_by_key.get((record.source, record.event_id))
        kept = record.voided_by or (previous.voided_by if previous else None)
        received = record.received_at or (previous.received_at if previous else None)
        found_by = record.learner_found_by or (previous.learner_found_by if previous else None)
        self.deliveries_by_key[(record.source, record.event_id)] = replace(
            record, voided_by=kept, received_at=received, learner_found_by=found_by
        )
        self.written[("d", record.source, record.event_id)] = datetime.now(UTC)

    async def insert_delivery(self, record: DeliveryRecord) -> DeliveryRecord | None:
        existing = self.deliveries_by_key.get((record.source, record.event_id))
        if existing is not None:
            return existing
        self._keep(record)
        return None

    async def mark_unapplied(self, source: str, event_id: str, status: str) -> bool:
        """As the Table store: the write happens only if the row is still what was read (its ETag)."""
        while True:
            seen = await self.delivery(source, event_id)
            if seen is not None and seen.status == "applied":
                return False
            if self.deliveries_by_key.get((source, event_id)) != seen:
                continue  # written meanwhile: read again
            record = DeliveryRecord(source, event_id, "", status)
            await self.save_delivery(replace(seen, status=status) if seen is not None else record)
            return True

    async def void_delivery(self, source: str, event_id: str, voided_by: str) -> None:
        previous = self.deliveries_by_key.get((source, event_id)) or DeliveryRecord(
            source, event_id, "", "voided", 0
        )
        self.deliveries_by_key[(source, event_id)] = replace(previous, voided_by=voided_by)
        self.written[("d", source, event_id)] = datetime.now(UTC)

    async def deliveries(self) -> AsyncIterator[DeliveryRecord]:
        for record in list(self.deliveries_by_key.values()):
            yield record

    async def activity(self, activity_id: str) -> ActivityState | None:
        return self.activities.get(activity_id)

    async def load(self, activity_id: str) -> tuple[ActivityState | None, list[EventEntry]]:
        log = self.event_log[activity_id]
        tombstones = [
            EventEntry.tombstone(source, event_id, voided_by)
            for (source, event_id), voided_by in self.voids[activity_id].items()
            if (source, event_id) not in log
        ]
        return self.activities.get(activity_id), [*log.values(), *tombstones]

    async def claim_activity(
        self, activity_id: str, owner: ActivityOwner, entries: Sequence[EventEntry] = ()
    ) -> ActivityState:
        if activity_id in self.activities:
            raise Conflict(activity_id)
        state = ActivityState(activity_id, owner=owner, claimed_at=datetime.now(UTC), etag=self._next_etag())
        self.activities[activity_id] = state
        for entry in entries:
            self._log(activity_id, entry)
        return state

    async def save_activity(self, state: ActivityState, entries: Sequence[EventEntry] = ()) -> ActivityState:
        current = self.activities.get(state.activity_id)
        if current is None or current.etag != state.etag:
            raise Conflict(state.activity_id)
        saved = replace(state, etag=self._next_etag())
        self.activities[state.activity_id] = saved
        for entry in entries:
            self._log(state.activity_id, entry)
        return saved

    async def add_event(self, activity_id: str, entry: EventEntry) -> None:
        self._log(activity_id, entry)

    def _log(self, activity_id: str, entry: EventEntry) -> None:
        key = (entry.source, entry.event_id)
        voided_by = self.voids[activity_id].get(key)
        self.event_log[activity_id][key] = replace(entry, voided_by=voided_by or entry.voided_by)
        self.written[("e", activity_id, *key)] = datetime.now(UTC)

    async def void_event(self, activity_id: str, source: str, event_id: str, voided_by: str) -> None:
        key = (source, event_id)
        self.voids[activity_id][key] = voided_by
        self.written[("e", activity_id, *key)] = datetime.now(UTC)
        if key in self.event_log[activity_id]:
            self.event_log[activity_id][key] = replace(self.event_log[activity_id][key], voided_by=voided_by)

    async def events(self, activity_id: str) -> list[EventEntry]:
        return (await self.load(activity_id))[1]

    async def dead_letter(self, source: str, event_id: str) -> DeadLetterRecord | None:
        return self.letters.get((source, event_id))

    async def save_dead_letter(self, record: DeadLetterRecord) -> None:
        self.letters[(record.source, record.event_id)] = record

    async def update_dead_letter(self, record: DeadLetterRecord) -> bool:
        if (record.source, record.event_id) not in self.letters:
            return False
        self.letters[(record.source, record.event_id)] = record
        return True

    async def delete_dead_letter(self, source: str, event_id: str) -> None:
        self.letters.pop((source, event_id), None)

    async def dead_letters(self, *, brief: bool = False) -> AsyncIterator[DeadLetterRecord]:
        for record in list(self.letters.values()):
            yield record

    async def job_checkpoint(self, name: str) -> JobCheckpoint | None:
        return self.jobs.get(name)

    async def save_job_checkpoint(self, checkpoint: JobCheckpoint) -> None:
        self.jobs[checkpoint.name] = checkpoint

    async def all_activities(self) -> AsyncIterator[ActivityState]:
        for state in list(self.activities.values()):
            yield state

    async def event_keys(self, activity_id: str) -> list[tuple[str, str]]:
        return sorted({*self.event_log[activity_id], *self.voids[activity_id]})

    async def delete_event(self, activity_id: str, source: str, event_id: str) -> None:
        self.event_log[activity_id].pop((source, event_id), None)
        self.voids[activity_id].pop((source, event_id), None)

    async def delete_delivery(self, source: str, event_id: str) -> None:
        self.deliveries_by_key.pop((source, event_id), None)

    async def delete_activity(self, activity_id: str) -> None:
        self.activities.pop(activity_id, None)

    async def assigner_activities(self, user_id: str) -> AsyncIterator[str]:
        for activity_id, state in list(self.activities.items()):
            entries = self.event_log.get(activity_id, {}).values()
            if AssignmentEntry(assigner_user_id=state.assigner_user_id).assigned_by(user_id) or any(
                e.assignment is not None and e.assignment.assigned_by(user_id) for e in entries
            ):
                yield activity_id

    async def scrub_assigner(self, activity_id: str, user_id: str) -> int:
        log = self.event_log[activity_id]
        named = [k for k, e in log.items() if e.assignment is not None and e.assignment.assigned_by(user_id)]
        for k in named:
            assignment = log[k].assignment
            assert assignment is not None
            log[k] = replace(log[k], assignment=replace(assignment, assigner_user_id=None))
        return len(named)

    async def purge_deliveries(
        self,
        cutoff: datetime,
        *,
        dry_run: bool,
        keep: Collection[tuple[str, str]] = (),
        stop: Callable[[], bool] = lambda: False,
    ) -> int:
        old = [
            k
            for k, record in self.deliveries_by_key.items()
            if not record.voided_by and k not in keep and self.written.get(("d", *k), cutoff) < cutoff
        ]
        if not dry_run:
            for k in old:
                del self.deliveries_by_key[k]
        return len(old)

    async def purge_dead_letters(
        self, cutoff: datetime, *, dry_run: bool, stop: Callable[[], bool] = lambda: False
    ) -> int:
        old = [
            k
            for k, letter in self.letters.items()
            if letter.state is not LetterState.PARKED and letter.last_failure < cutoff
        ]
        if not dry_run:
            for k in old:
                del self.letters[k]
        return len(old)

    def log_key(self, activity_id: str) -> str:
        return activity_id

    async def old_logs(self, cutoff: datetime, after: str | None = None) -> AsyncIterator[str]:
        for activity_id in sorted(
            {k[1] for k, when in self.written.items() if k[0] == "e" and when < cutoff}
        ):
            if after is None or activity_id > after:
                yield activity_id

    async def log_snapshot(self, log_key: str) -> LogSnapshot:
        """One copy per key: this store has no row that holds entries of its own."""
        log, voids = self.event_log[log_key], self.voids[log_key]
        copies = [
            LogCopy(*k, entry, self.written.get(("e", log_key, *k)), voids.get(k) or entry.voided_by, False)
            for k, entry in log.items()
        ]
        copies += [
            LogCopy(*k, None, self.written.get(("e", log_key, *k)), voided_by, False)
            for k, voided_by in voids.items()
            if k not in log
        ]
        return LogSnapshot(log_key, self.activities.get(log_key), tuple(copies))

    async def fold_log(
        self,
        snapshot: LogSnapshot,
        folded: Sequence[LogCopy],
        combine: Callable[[Sequence[EventEntry]], EventEntry],
    ) -> None:
        log = self.event_log[snapshot.log_key]
        for copy in folded:
            current = log.get(copy.key)
            if current is None or current != copy.entry or copy.key in self.voids[snapshot.log_key]:
                raise Conflict(snapshot.log_key)
        merged = combine([c.entry for c in folded if c.entry is not None])
        for copy in folded:
            del log[copy.key]
            self.written.pop(("e", snapshot.log_key, *copy.key), None)
        self._log(snapshot.log_key, merged)

    async def table_sizes(self) -> dict[str, int]:
        return {
            "deliveries": len(self.deliveries_by_key),
            "activities": len(self.activities),
            "events": sum(len(log) for log in self.event_log.values()),
            "deadletters": len(self.letters),
        }
