"""What the operators' maintenance commands (forget, reconcile) need from the state store beyond
`StateStore`: listing activities and removing rows. Kept apart so the queue side's interface stays
as small as it is; TableStateStore and the tests' MemoryStateStore implement both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from shared.state.models import ActivityState
from shared.state.store import StateStore


@runtime_checkable
class MaintainedStore(StateStore, Protocol):
    def all_activities(self) -> AsyncIterator[ActivityState]:
        """Every activity row (a full scan: operators' commands only)."""

    async def event_keys(self, activity_id: str) -> list[tuple[str, str]]:
        """(source, eventId) of every row of the activity's event log."""

    async def delete_event(self, activity_id: str, source: str, event_id: str) -> None: ...
    async def delete_delivery(self, source: str, event_id: str) -> None: ...
    async def delete_activity(self, activity_id: str) -> None: ...
    def assigner_activities(self, user_id: str) -> AsyncIterator[str]:
        """The activities whose row or event log names `user_id` (an Entra object id) as an
        assignment's assigner (a full scan)."""

    async def scrub_assigner(self, activity_id: str, user_id: str) -> int:
        """Take `user_id` out of the activity's log entries that name them as assigner (each entry
        stays, its assigner None); how many did. The row's own state is left. Conflict when the log
        changed meanwhile."""
