"""Upserting one learningSelfInitiatedCourse: GET by external id, then PATCH what moved or POST.

Graph has no upsert and no uniqueness guarantee we can rely on, so the record is always looked up first,
a POST is never retried blindly, and a conflict on POST (another worker won the race) turns into a
re-read and a PATCH.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from shared.delivery.exceptions import PermanentFailure, TransientFailure
from shared.delivery.merge import changes_for, desired_state
from shared.delivery.resolve import Resolver
from shared.events.model import CanonicalEvent
from shared.graph.errors import GraphError, GraphUnavailable
from shared.graph.gateway import ActivityRecord, LearningGraph

log = logging.getLogger(__name__)


class UpsertResult(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class CourseActivityUpserter:
    def __init__(self, graph: LearningGraph, resolver: Resolver | None = None) -> None:
        self._graph = graph
        self._resolver = resolver or Resolver(graph)

    async def apply(self, event: CanonicalEvent) -> UpsertResult:
        try:
            existing = await self._graph.get_activity(event.activity_id)
            if existing is not None:
                return await self._update(existing, event)
            return await self._create(event)
        except GraphUnavailable as exc:
            raise TransientFailure("graphUnavailable", str(exc)) from None
        except GraphError as exc:
            raise _classify(exc) from None

    async def _update(self, existing: ActivityRecord, event: CanonicalEvent) -> UpsertResult:
        changes = changes_for(existing, event)
        if changes.is_empty():
            return UpsertResult.UNCHANGED
        await self._graph.update_activity(existing.id, changes)
        return UpsertResult.UPDATED

    async def _create(self, event: CanonicalEvent) -> UpsertResult:
        learner_id = await self._resolver.learner_user_id(event.learner, event.source)
        content_id = await self._resolver.content_id(event.course.external_id)
        try:
            await self._graph.create_activity(event.activity_id, learner_id, content_id, desired_state(event))
            return UpsertResult.CREATED
        except GraphError as exc:
            if exc.status != 409:
                raise
        existing = await self._graph.get_activity(event.activity_id)
        if existing is None:
            raise TransientFailure("conflict", "Graph reported a conflict but has no such record yet.")
        return await self._update(existing, event)


def _classify(exc: GraphError) -> TransientFailure | PermanentFailure:
    if exc.transient or exc.status == 401:
        return TransientFailure("graphTransient", f"Graph {exc.status} {exc.code}", exc.code)
    if exc.status == 403:
        return PermanentFailure("graphForbidden", f"{exc.code}: {exc.message}", exc.code)
    if exc.status == 404:
        return PermanentFailure("graphNotFound", f"{exc.code}: {exc.message}", exc.code)
    return PermanentFailure("graphRejected", f"Graph {exc.status} {exc.code}: {exc.message}", exc.code)
