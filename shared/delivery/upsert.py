"""Applying events to Graph, exactly once per change, through the state store.

For each event: a redelivery (its eventId already applied) is acknowledged with no Graph call. Else
the event joins its activity's event log, the log is folded into the record it calls for (merge.py),
and Graph gets what differs from the record last written:

- a known activity costs one Graph call: a PATCH by its Graph id, or nothing when nothing changed;
- a new activity is first claimed in the store (only one worker wins the row), then looked up in
  Graph by external id (a previous attempt, or another system, may have created it), and only then
  POSTed. A POST is never retried blindly: the retry comes back through this lookup.

Concurrent updates are serialised by the activity row's ETag: a worker that loses re-reads, folds
again and writes again (writes are idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from shared.delivery.exceptions import PermanentFailure, TransientFailure
from shared.delivery.merge import contribution, diff, fold, graph_baseline, state_of
from shared.delivery.resolve import Resolver
from shared.events.model import CanonicalEvent
from shared.graph.errors import GraphError, GraphUnavailable
from shared.graph.gateway import ActivityWrite, LearningGraph
from shared.state.models import ActivityState, DeliveryRecord
from shared.state.store import Conflict, StateStore

log = logging.getLogger(__name__)

#: A claim without a Graph id younger than this belongs to a worker still creating the record.
CLAIM_LEASE = timedelta(seconds=60)
_ATTEMPTS = 4
_POST_ATTEMPTS = 3
#: Longer waits than this go back to the queue instead of holding the function.
_MAX_WAIT = 20.0


class UpsertResult(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DEDUPLICATED = "deduplicated"
    VOIDED = "voided"


class CourseActivityUpserter:
    def __init__(self, graph: LearningGraph, state: StateStore, resolver: Resolver | None = None) -> None:
        self._graph = graph
        self._state = state
        self._resolver = resolver or Resolver(graph)

    async def apply(self, event: CanonicalEvent) -> UpsertResult:
        seen = await self._state.delivery(event.source, event.event_id)
        if seen is not None and seen.status == "applied":
            await self._state.save_delivery(replace(seen, seen=seen.seen + 1))
            return UpsertResult.DEDUPLICATED
        entry = contribution(event)
        if seen is not None and seen.voided_by:  # its voiding statement came first
            entry = replace(entry, voided_by=seen.voided_by)
        await self._state.add_event(event.activity_id, entry)
        result = await self._guarded(self._sync(event.activity_id, event))
        await self._state.save_delivery(
            DeliveryRecord(
                event.source, event.event_id, event.activity_id, "applied", (seen.seen + 1) if seen else 1
            )
        )
        if seen is not None and seen.status == "failed":  # parked or dead-lettered before: resolved now
            await self._state.delete_dead_letter(event.source, event.event_id)
        return result

    async def void(self, source: str, voided_event_id: str, voiding_event_id: str) -> UpsertResult:
        """Withdraw the effect of an event (an xAPI voided statement), whenever it arrives."""
        target = await self._state.delivery(source, voided_event_id)
        if target is None or not target.activity_id:
            placeholder = DeliveryRecord(source, voided_event_id, "", "voided", 0, voided_by=voiding_event_id)
            await self._state.save_delivery(placeholder)
            return UpsertResult.VOIDED
        await self._state.void_event(target.activity_id, voided_event_id, voiding_event_id)
        await self._guarded(self._sync(target.activity_id, None))
        return UpsertResult.VOIDED

    async def mark(self, event: CanonicalEvent, status: str) -> None:
        """Record that an event was parked or dead-lettered (a later success overwrites it)."""
        await self._state.save_delivery(
            DeliveryRecord(event.source, event.event_id, event.activity_id, status)
        )

    async def _guarded(self, work: Awaitable[UpsertResult]) -> UpsertResult:
        try:
            return await work
        except GraphUnavailable as exc:
            raise TransientFailure("graphUnavailable", str(exc)) from None
        except GraphError as exc:
            raise _classify(exc) from None

    async def _sync(self, activity_id: str, event: CanonicalEvent | None) -> UpsertResult:
        for _ in range(_ATTEMPTS):
            row = await self._state.activity(activity_id)
            try:
                if row is None or row.graph_id is None:
                    if event is None:
                        return UpsertResult.UNCHANGED  # voided before it was ever written
                    return await self._create(activity_id, row, event)
                return await self._update(row)
            except Conflict:
                continue  # another worker wrote the row: read it again
        raise TransientFailure("concurrentUpdates", "The activity kept changing under this worker.")

    async def _update(self, row: ActivityState) -> UpsertResult:
        desired = fold(await self._state.events(row.activity_id))
        changes = diff(state_of(row), desired)
        if changes.is_empty():
            return UpsertResult.UNCHANGED
        assert row.graph_id is not None
        await self._graph.update_activity(row.graph_id, changes)
        await self._state.save_activity(_with(row, desired))
        return UpsertResult.UPDATED

    async def _create(
        self, activity_id: str, row: ActivityState | None, event: CanonicalEvent
    ) -> UpsertResult:
        now = datetime.now(UTC)
        if row is None:
            row = await self._state.claim_activity(activity_id)  # Conflict: another worker won
        elif row.claimed_at is not None and now - row.claimed_at < CLAIM_LEASE:
            raise TransientFailure("activityBeingCreated", "Another worker is creating this activity.")
        else:
            row = await self._state.save_activity(replace(row, claimed_at=now))  # take over a stale claim
        try:
            return await self._create_claimed(activity_id, row, event)
        except BaseException:
            with contextlib.suppress(Conflict):  # let the next attempt (a retry, a replay) claim it at once
                await self._state.save_activity(replace(row, claimed_at=None))
            raise

    async def _create_claimed(
        self, activity_id: str, row: ActivityState, event: CanonicalEvent
    ) -> UpsertResult:
        """Look up, then POST; on a throttled or failed POST wait as Graph asks and look up again
        before POSTing again (the POST may have landed): a retried POST never duplicates."""
        for attempt in range(_POST_ATTEMPTS):
            existing = await self._graph.get_activity(activity_id)
            if existing is not None:  # a previous POST landed, or the record predates the bridge
                await self._state.add_event(activity_id, graph_baseline(existing))
                row = await self._state.save_activity(
                    _with(replace(row, graph_id=existing.id), state_of(existing))
                )
                return await self._update(row)
            entries = await self._state.events(activity_id)
            if all(entry.voided_by for entry in entries):  # everything said so far was withdrawn
                await self._state.save_activity(replace(row, claimed_at=None))
                return UpsertResult.UNCHANGED
            learner_id = await self._resolver.learner_user_id(event.learner, event.source)
            content_id = await self._resolver.content_id(event.course.external_id)
            desired = fold(entries)
            try:
                created = await self._graph.create_activity(activity_id, learner_id, content_id, desired)
            except GraphError as exc:
                if exc.status != 409 and not (exc.transient and attempt + 1 < _POST_ATTEMPTS):
                    raise
                await asyncio.sleep(_retry_delay(exc.retry_after, attempt))
                continue
            except GraphUnavailable:
                if attempt + 1 == _POST_ATTEMPTS:
                    raise
                await asyncio.sleep(_retry_delay(None, attempt))
                continue
            await self._state.save_activity(_with(replace(row, graph_id=created.id), desired))
            return UpsertResult.CREATED
        raise TransientFailure(
            "conflict", "Graph reported the activity as existing but it cannot be read yet."
        )


def _retry_delay(retry_after: float | None, attempt: int) -> float:
    """Graph's Retry-After when it gives one (capped), else exponential backoff; with jitter."""
    base = min(retry_after, _MAX_WAIT) if retry_after is not None else min(0.5 * 2**attempt, _MAX_WAIT)
    return float(base + random.uniform(0, 0.25 * base + 0.1))


def _with(row: ActivityState, state: ActivityWrite) -> ActivityState:
    return replace(
        row,
        status=state.status,
        completion_percentage=state.completion_percentage,
        started_at=state.started_at,
        completed_at=state.completed_at,
    )


def _classify(exc: GraphError) -> TransientFailure | PermanentFailure:
    if exc.transient or exc.status == 401:
        return TransientFailure("graphTransient", f"Graph {exc.status} {exc.code}", exc.code)
    if exc.status == 403:
        return PermanentFailure("graphForbidden", f"{exc.code}: {exc.message}", exc.code)
    if exc.status == 404:
        return PermanentFailure("graphNotFound", f"{exc.code}: {exc.message}", exc.code)
    return PermanentFailure("graphRejected", f"Graph {exc.status} {exc.code}: {exc.message}", exc.code)
