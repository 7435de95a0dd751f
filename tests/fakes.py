"""In-memory stand-ins for the two seams unit tests cross: the queue and Graph.

End-to-end tests use the real things (Azurite, msgraph-sdk against the sandbox); these fakes only
let unit tests pin down the logic on each side of those seams.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from shared.graph.errors import GraphError
from shared.graph.gateway import ActivityRecord, ActivityWrite
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
        changes = {k: v for k, v in vars(fields).items() if v is not None}
        self.activities[key] = replace(record, **changes)
