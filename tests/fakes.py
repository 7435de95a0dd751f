"""In-memory stand-ins for the two seams unit tests cross: the queue and Graph.

End-to-end tests use the real things (Azurite, msgraph-sdk against the sandbox); these fakes only
let unit tests pin down the logic on each side of those seams.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shared.graph.errors import GraphError
from shared.graph.gateway import ActivityRecord, ActivityWrite
from shared.state.models import ActivityState, DeadLetterRecord, DeliveryRecord, EventEntry
from shared.state.store import Conflict
from shared.storage.queues import QueueUnavailable


class FakeQueue:
    def __init__(self, fail: bool = False) -> None:
        self.sent: dict[str, list[str]] = defaultdict(list)
        self.fail = fail

    def send_all(self, queue: str, messages: Sequence[str]) -> None:
        if self.fail:
            raise QueueUnavailable("queue down")
        self.sent[queue].extend(messages)


class FakeGraph:
    """Records every call; `errors` maps a method name to exceptions raised on its next calls."""

    def __init__(self) -> None:
        self.users_by_upn: dict[str, str] = {}
        self.users_by_mail: dict[str, str] = {}
        self.users_by: dict[tuple[str, str], str] = {}  # (attribute, value) -> id, other attributes
        self.contents: dict[str, str] = {}
        self.activities: dict[str, ActivityRecord] = {}
        self.calls: list[str] = []
        self.errors: dict[str, list[Exception]] = defaultdict(list)

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if self.errors[name]:
            raise self.errors[name].pop(0)

    async def find_user_id_by_upn(self, upn: str) -> str | None:
        self._enter("find_user_id_by_upn")
        return self.users_by_upn.get(upn.casefold())

    async def find_user_id_by(self, attribute: str, value: str) -> str | None:
        self._enter(f"find_user_id_by:{attribute}")
        if attribute == "mail":
            return self.users_by_mail.get(value.casefold())
        return self.users_by.get((attribute, value))

    async def find_content_id(self, external_id: str) -> str | None:
        self._enter("find_content_id")
        return self.contents.get(external_id)

    async def get_activity(self, external_id: str) -> ActivityRecord | None:
        self._enter("get_activity")
        return self.activities.get(external_id)

    async def create_activity(
        self, external_id: str, learner_user_id: str, content_id: str, fields: ActivityWrite
    ) -> ActivityRecord:
        self._enter("create_activity")
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
        )
        self.activities[external_id] = record
        return record

    async def update_activity(self, activity_id: str, fields: ActivityWrite) -> None:
        self._enter("update_activity")
        key, record = next((k, r) for k, r in self.activities.items() if r.id == activity_id)
        changes: dict[str, Any] = {k: v for k, v in vars(fields).items() if v is not None and k != "clear"}
        changes.update(dict.fromkeys(fields.clear))
        self.activities[key] = replace(record, **changes)


class MemoryStateStore:
    """StateStore in memory, with the same conditional-write rules as the table implementation."""

    def __init__(self) -> None:
        self.deliveries_by_key: dict[tuple[str, str], DeliveryRecord] = {}
        self.activities: dict[str, ActivityState] = {}
        self.event_log: dict[str, dict[str, EventEntry]] = defaultdict(dict)
        self.voids: dict[str, dict[str, str]] = defaultdict(dict)
        self.letters: dict[tuple[str, str], DeadLetterRecord] = {}
        self._etag = 0

    def _next_etag(self) -> str:
        self._etag += 1
        return f"W/{self._etag}"

    async def delivery(self, source: str, event_id: str) -> DeliveryRecord | None:
        return self.deliveries_by_key.get((source, event_id))

    async def save_delivery(self, record: DeliveryRecord) -> None:
        self.deliveries_by_key[(record.source, record.event_id)] = record

    async def deliveries(self) -> AsyncIterator[DeliveryRecord]:
        for record in list(self.deliveries_by_key.values()):
            yield record

    async def activity(self, activity_id: str) -> ActivityState | None:
        return self.activities.get(activity_id)

    async def claim_activity(self, activity_id: str) -> ActivityState:
        if activity_id in self.activities:
            raise Conflict(activity_id)
        state = ActivityState(activity_id, claimed_at=datetime.now(UTC), etag=self._next_etag())
        self.activities[activity_id] = state
        return state

    async def save_activity(self, state: ActivityState) -> ActivityState:
        current = self.activities.get(state.activity_id)
        if current is None or current.etag != state.etag:
            raise Conflict(state.activity_id)
        saved = replace(state, etag=self._next_etag())
        self.activities[state.activity_id] = saved
        return saved

    async def add_event(self, activity_id: str, entry: EventEntry) -> None:
        voided_by = self.voids[activity_id].get(entry.event_id)
        self.event_log[activity_id][entry.event_id] = replace(entry, voided_by=voided_by or entry.voided_by)

    async def void_event(self, activity_id: str, event_id: str, voided_by: str) -> None:
        self.voids[activity_id][event_id] = voided_by
        if event_id in self.event_log[activity_id]:
            self.event_log[activity_id][event_id] = replace(
                self.event_log[activity_id][event_id], voided_by=voided_by
            )

    async def events(self, activity_id: str) -> list[EventEntry]:
        return list(self.event_log[activity_id].values())

    async def dead_letter(self, source: str, event_id: str) -> DeadLetterRecord | None:
        return self.letters.get((source, event_id))

    async def save_dead_letter(self, record: DeadLetterRecord) -> None:
        self.letters[(record.source, record.event_id)] = record

    async def delete_dead_letter(self, source: str, event_id: str) -> None:
        self.letters.pop((source, event_id), None)

    async def dead_letters(self) -> AsyncIterator[DeadLetterRecord]:
        for record in list(self.letters.values()):
            yield record
