"""Forgetting a learner (a data-subject request): their course activities written by the bridge are
deleted from Graph, and every state row about them is removed.

What is "about them": the activity rows they own (by Entra object id), each activity's event log,
the delivery rows of those events, and dead letters (parked or dead-lettered events) for those
events or naming the learner as the request does. Nothing else is kept: the receipt holds counts
only. Each activity's Graph record and rows go before the activity row itself, so an interrupted run
is finished by running it again. Forgetting blocks nothing: a later event for the learner is applied
as any first event is (a new record).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from shared.events.model import Learner
from shared.events.queue import QueuedEvent
from shared.graph.errors import GraphError
from shared.graph.gateway import LearningGraph
from shared.operations.batching import throttled
from shared.operations.catalog import GraphRefused
from shared.operations.maintenance import MaintainedStore
from shared.state.models import ActivityState


@dataclass
class ForgetPlan:
    """The rows and records that are about the learner (identifiers stay in memory, never printed)."""

    activities: list[ActivityState] = field(default_factory=list)
    event_keys: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    letters: set[tuple[str, str]] = field(default_factory=set)

    def deliveries(self) -> set[tuple[str, str]]:
        keys = {k for keys in self.event_keys.values() for k in keys}
        return keys | self.letters

    def counts(self) -> Receipt:
        return Receipt(
            graph_records=sum(1 for a in self.activities if a.graph_id),
            activities=len(self.activities),
            event_log_entries=sum(len(k) for k in self.event_keys.values()),
            deliveries=len(self.deliveries()),
            dead_letters=len(self.letters),
        )


@dataclass
class Receipt:
    graph_records: int = 0
    graph_records_already_gone: int = 0
    activities: int = 0
    event_log_entries: int = 0
    deliveries: int = 0
    dead_letters: int = 0

    def to_json(self) -> dict[str, int]:
        return {to_camel(name): value for name, value in asdict(self).items()}


async def plan_forget(store: MaintainedStore, learner: Learner, user_id: str | None) -> ForgetPlan:
    """Everything about the learner `user_id` (their Entra object id), or named as `learner` in a
    parked or dead-lettered event (which never reached an activity).

    `user_id` None: the learner, named by email or UPN, is no longer in Entra (a deleted account), so
    nothing maps them to the object id their activity rows are keyed by; only the dead letters that
    name them as `learner` does are found."""
    plan = ForgetPlan()
    wanted = user_id.casefold() if user_id is not None else None
    async for activity in store.all_activities():
        if activity.owner is not None and activity.owner.learner_user_id.casefold() == wanted:
            plan.activities.append(activity)
            plan.event_keys[activity.activity_id] = await store.event_keys(activity.activity_id)
    owned = {a.activity_id for a in plan.activities}
    events = {k for keys in plan.event_keys.values() for k in keys}
    names = {learner.identity_key()}
    if user_id is not None:
        names.add(Learner.model_validate({"userId": user_id}).identity_key())
    async for letter in store.dead_letters():
        if (
            (letter.source, letter.event_id) in events
            or (letter.activity_id is not None and letter.activity_id in owned)
            or _learner_key(letter.message) in names
        ):
            plan.letters.add((letter.source, letter.event_id))
    return plan


def _learner_key(message: str) -> str | None:
    try:
        queued = QueuedEvent.model_validate_json(message)
    except ValidationError:
        return None
    return queued.event.learner.identity_key() if queued.event is not None else None


async def forget(
    store: MaintainedStore,
    graph: LearningGraph,
    plan: ForgetPlan,
    advance: Callable[[], None] = lambda: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Receipt:
    receipt = Receipt()
    for activity in plan.activities:
        if activity.graph_id:
            gone = await _delete_record(graph, activity.graph_id, sleep)
            receipt.graph_records += gone
            receipt.graph_records_already_gone += not gone
        for source, event_id in plan.event_keys.get(activity.activity_id, []):
            await _delete_delivery(store, source, event_id, receipt)
            await store.delete_event(activity.activity_id, source, event_id)
            receipt.event_log_entries += 1
        await store.delete_activity(activity.activity_id)
        receipt.activities += 1
        advance()
    for source, event_id in plan.letters:
        await _delete_delivery(store, source, event_id, receipt)
        await store.delete_dead_letter(source, event_id)
        receipt.dead_letters += 1
    return receipt


async def _delete_delivery(store: MaintainedStore, source: str, event_id: str, receipt: Receipt) -> None:
    """Counted only when there was a row (a parked event may have none, an event log entry shares it)."""
    if await store.delivery(source, event_id) is not None:
        await store.delete_delivery(source, event_id)
        receipt.deliveries += 1


async def _delete_record(
    graph: LearningGraph, graph_id: str, sleep: Callable[[float], Awaitable[None]]
) -> bool:
    try:
        return await throttled(lambda: graph.delete_activity(graph_id), sleep)
    except GraphError as exc:
        if exc.status in (401, 403):
            raise GraphRefused(
                f"Graph refused the delete ({exc.status} {exc.code}): the identity needs "
                "LearningSelfInitiatedCourse.ReadWrite.All"
            ) from None
        raise
