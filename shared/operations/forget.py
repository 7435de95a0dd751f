"""Forgetting a learner (a data-subject request): their course activities written by the bridge are
deleted from Graph, and every state row about them is removed.

What is "about them": the activity rows they own (by Entra object id), each activity's event log,
the delivery rows of those events, and dead letters (parked or dead-lettered events) for those
events or naming the learner as the request does. Nothing else is kept: the receipt holds counts
only. Each activity's Graph record and rows go before the activity row itself, so an interrupted run
is finished by running it again. Forgetting blocks nothing: a later event for the learner is applied
as any first event is (a new record).

Since issue 18 a person is also named as the *assigner* of other learners' courses: by their object id
in those activities' rows (what was last written to Graph) and event logs, by their address in the
messages of parked or dead-lettered assignment events. The other learner's assignment stays, without
naming them. Graph cannot change `assignerUserId` by PATCH (the Update page), so each such record is
deleted and created again from the log with the assigner left out, progress and completion carried,
as the upserter does when an assigner changes. In this order, per activity: the log entries lose the
id; the Graph record is deleted and the row keeps naming the person, without a Graph id; the record
is created again through the upserter, whose row write is the first that no longer names them. A run
cut short anywhere leaves a row that still names the person, which the next run finds and finishes
(a record already deleted is no failure). A record written again that names them anyway (a worker
applied a statement naming them, queued before the request, after the log was scrubbed) is scrubbed
and written again, a few times, then counted pending. A dead letter's message loses the assigner
(the event stays replayable, as an assignment without assigner).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from shared.delivery.exceptions import DeliveryFailure
from shared.delivery.upsert import CourseActivityUpserter, cleared
from shared.events.identity import same_object_id
from shared.events.model import Learner
from shared.events.queue import QueuedEvent
from shared.graph.errors import GraphError
from shared.graph.gateway import LearningGraph
from shared.operations.batching import throttled
from shared.operations.catalog import GraphRefused
from shared.operations.maintenance import MaintainedStore
from shared.state.models import ActivityState
from shared.state.store import Conflict

log = logging.getLogger(__name__)

#: How often one activity's assigner is looked for again when a worker wrote its row meanwhile.
_ATTEMPTS = 5


@dataclass
class ForgetPlan:
    """The rows and records that are about the learner (identifiers stay in memory, never printed)."""

    activities: list[ActivityState] = field(default_factory=list)
    event_keys: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    letters: set[tuple[str, str]] = field(default_factory=set)
    #: The person as assigner: their object id (None: not known), the other learners' activity rows
    #: naming them and how many of those activities' log entries do, and the dead letters whose event
    #: names them as its assignment's assigner.
    assigner_user_id: str | None = None
    assigned: list[ActivityState] = field(default_factory=list)
    assigner_entries: int = 0
    assigner_letters: set[tuple[str, str]] = field(default_factory=set)

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
            assigner_records=sum(1 for a in self.assigned if a.graph_id and _names(a, self.assigner_user_id)),
            assigner_entries=self.assigner_entries,
            assigner_letters=len(self.assigner_letters),
        )


@dataclass
class Receipt:
    graph_records: int = 0
    graph_records_already_gone: int = 0
    activities: int = 0
    event_log_entries: int = 0
    deliveries: int = 0
    dead_letters: int = 0
    #: Other learners' assignments that named the person as assigner: Graph records created again
    #: without them, log entries and dead letters that no longer name them, and activities left
    #: naming them because Graph refused or throttled the re-creation (run forget again).
    assigner_records: int = 0
    assigner_entries: int = 0
    assigner_letters: int = 0
    assigner_pending: int = 0

    def to_json(self) -> dict[str, int]:
        return {to_camel(name): value for name, value in asdict(self).items()}


async def plan_forget(
    store: MaintainedStore, learner: Learner, user_id: str | None, *, as_assigner: bool = True
) -> ForgetPlan:
    """Everything about the learner `user_id` (their Entra object id), or named as `learner` in a
    parked or dead-lettered event (which never reached an activity).

    Also the person as the assigner of other learners' courses: the activities whose row or log names
    `user_id` as assigner (one more scan of the activities table), and the parked or dead-lettered
    events that name them, as the request does, as their assignment's assigner.

    `user_id` None: the learner, named by email or UPN, is no longer in Entra (a deleted account), so
    nothing maps them to the object id their activity rows are keyed by; only the dead letters that
    name them as `learner` (or as assigner) does are found.

    `as_assigner` False: the learner's own activities and letters only, without the scan for the
    person as assigner (`trace`, which tells the learner's own records)."""
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
        elif as_assigner and _assigner_key(letter.message) in names:
            plan.assigner_letters.add((letter.source, letter.event_id))
    if user_id is not None and as_assigner:
        plan.assigner_user_id = user_id
        async for activity_id in store.assigner_activities(user_id):
            if activity_id in owned:
                continue  # their own activity goes whole
            row = await store.activity(activity_id)
            if row is None:
                continue
            plan.assigned.append(row)
            plan.assigner_entries += sum(
                1
                for e in await store.events(activity_id)
                if e.assignment and e.assignment.assigned_by(user_id)
            )
    return plan


def _names(row: ActivityState, user_id: str | None) -> bool:
    """Whether the row says the record last written names `user_id` as its assigner."""
    return user_id is not None and same_object_id(row.assigner_user_id, user_id)


def _assigner_key(message: str) -> str | None:
    """Who the message's event names as its assignment's assigner (None: nobody, or not an event)."""
    try:
        queued = QueuedEvent.model_validate_json(message)
    except ValidationError:
        return None
    assignment = queued.event.assignment if queued.event is not None else None
    if assignment is None or assignment.assigner is None:
        return None
    return assignment.assigner.identity_key()


def _without_assigner(message: str) -> str:
    """The message with its event's assigner left out (the rest as it was)."""
    queued = QueuedEvent.model_validate_json(message)
    assert queued.event is not None
    assert queued.event.assignment is not None
    event = queued.event.model_copy(
        update={"assignment": queued.event.assignment.model_copy(update={"assigner": None})}
    )
    return queued.model_copy(update={"event": event}).model_dump_json(by_alias=True, exclude_none=True)


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
    upserter: CourseActivityUpserter | None = None,
) -> Receipt:
    """Carry out the plan. `upserter` writes the other learners' assignments again without the
    person as assigner (default: one on `graph` and `store` with the default settings)."""
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
    for source, event_id in plan.assigner_letters:
        letter = await store.dead_letter(source, event_id)
        if letter is not None and await store.update_dead_letter(
            replace(letter, message=_without_assigner(letter.message))
        ):
            receipt.assigner_letters += 1
    if plan.assigner_user_id is not None and plan.assigned:
        upserter = upserter or CourseActivityUpserter(graph, store)
        for row in plan.assigned:
            await _unname_assigner(
                store, graph, upserter, row.activity_id, plan.assigner_user_id, sleep, receipt
            )
    return receipt


async def _unname_assigner(
    store: MaintainedStore,
    graph: LearningGraph,
    upserter: CourseActivityUpserter,
    activity_id: str,
    user_id: str,
    sleep: Callable[[float], Awaitable[None]],
    receipt: Receipt,
) -> None:
    """Another learner's activity naming `user_id` as assigner: its log entries lose the id, then its
    Graph record is deleted and created again from the log (module docstring: the row names them until
    the new record is written, so an interrupted run is finished by the next)."""
    for _ in range(_ATTEMPTS):
        try:
            receipt.assigner_entries += await store.scrub_assigner(activity_id, user_id)
            row = await store.activity(activity_id)
            if row is None or not _names(row, user_id):
                return
            if row.graph_id is not None:
                await _delete_record(graph, row.graph_id, sleep)
                await store.save_activity(replace(row, graph_id=None, claimed_at=None))
            await upserter.resync(activity_id)
        except Conflict:
            continue  # a worker wrote the row or the log meanwhile: look again
        except DeliveryFailure as failure:
            log.info("assigner left in place for now: reason=%s", failure.reason)
            receipt.assigner_pending += 1
            return
        row = await store.activity(activity_id)
        if row is not None and _names(row, user_id):
            if row.graph_id is not None:
                # a worker applied a statement naming them after the scrub (one queued before the
                # request): the record written names them again, so scrub and write it again
                continue
            # the log calls for no record now (every event behind it voided): nothing names them
            await store.save_activity(cleared(row))
        receipt.assigner_records += 1
        return
    receipt.assigner_pending += 1


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
