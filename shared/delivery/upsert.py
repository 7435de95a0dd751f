"""Applying events to Graph, exactly once per change, through the state store.

For each event: a redelivery (its eventId already applied) is acknowledged with no Graph call. Else
the learner is resolved (so the record is keyed by who they are in Entra, not how the source named
them), the record's owner is checked, the event joins the activity's event log, the log is folded
into the record it calls for (merge.py), and Graph gets what differs from the record last written:

- a known activity costs one Graph call: a PATCH by its Graph id, a DELETE when every event behind it
  was voided, or nothing when nothing changed;
- a record that must change its type (self-initiated <-> learningAssignment, or a new assignmentType,
  none of which a PATCH can change) is deleted and created again as the events call for, progress and
  completion included: a DELETE, then the row saved without its Graph id and claimed by this worker
  (ETag-guarded), then the creation below (`_recreate`);
- a new activity is first claimed in the store (only one worker wins the row, and the row records
  its owner), then looked up in Graph by external id (a previous attempt may have created it), and
  only then POSTed. A POST is never retried blindly: the retry comes back through this lookup. A
  record found in Graph is adopted only if it is the same learner's, in the same course.

Concurrent updates are serialised by the activity row's ETag: a worker that loses re-reads, folds
again and writes again (writes are idempotent). Waits longer than a couple of seconds are never spent
inside an invocation: they become TransientFailure(retry_after=...), and the worker puts the event
back on the queue with that delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from shared.delivery.exceptions import DeliveryFailure, PermanentFailure, TransientFailure
from shared.delivery.merge import contribution, fold, graph_baseline, patch, same_kind, state_of, whole
from shared.delivery.resolve import LEARNER_NOT_FOUND, Resolver
from shared.events.identity import ActivityOwner, activity_id_for, derived_activity_id, owner_of
from shared.events.model import CanonicalEvent
from shared.graph.errors import (
    APP_ROLE_MISSING,
    CONTENT_OF_ANOTHER_PROVIDER,
    LEARNER_NOT_LICENSED,
    PROVIDER_NOT_ENABLED,
    PROVIDER_NOT_REGISTERED,
    TENANT_NOT_LICENSED,
    GraphError,
    GraphUnavailable,
)
from shared.graph.gateway import ActivityRecord, ActivityWrite, ContentWrite, LearningGraph
from shared.state.models import (
    CAUSE_CHARACTERS,
    ActivityState,
    DeliveryRecord,
    EventEntry,
    GraphWrite,
    noted,
)
from shared.state.store import Conflict, StateStore

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A claim without a Graph id younger than this belongs to a worker still creating the record.
CLAIM_LEASE = timedelta(seconds=60)
_ATTEMPTS = 4
_POST_ATTEMPTS = 3
#: How soon an event for an activity another worker is creating looks again.
_LOOK_AGAIN = 5.0
#: The longest single wait spent inside an invocation; longer ones go back to the queue.
INLINE_WAIT = 2.0
#: How long to wait after a 429 that names no Retry-After (Graph's throttling guidance: back off).
DEFAULT_THROTTLE_DELAY = 30.0
#: What Graph answers a write it made: Create 201, Update and Delete 204 (RULES.md; the SDK returns
#: only on success, so the documented status is what is recorded). A DELETE of a record gone: 404.
_WRITTEN = {"create": 201, "patch": 204, "delete": 204}
#: A voiding whose record cannot be written for this reason is recorded and acknowledged: the record
#: does not exist in Graph yet (its course is not in Viva Learning), and the activity's parked events
#: write it without the voided one.
_WITHDRAWN_LATER = frozenset({"contentNotFound"})
#: The event(s) behind the Graph writes of the `_sync` running in this task (the write history).
_CAUSE: ContextVar[str] = ContextVar("graph_write_cause", default="")


class UpsertResult(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    DEDUPLICATED = "deduplicated"
    VOIDED = "voided"


class CourseActivityUpserter:
    def __init__(
        self,
        graph: LearningGraph,
        state: StateStore,
        resolver: Resolver | None = None,
        *,
        shared_id_sources: Collection[str] = (),
        claim_lease: timedelta = CLAIM_LEASE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        content_languages: Mapping[str, str] | None = None,
        voiding_sources: Collection[str] | None = None,
        progress_keys: Mapping[str, str] | None = None,
        write_retention: timedelta | None = None,
    ) -> None:
        self._graph = graph
        #: BRIDGE_RETENTION_DAYS: a write older than this leaves the row's write history whenever the
        #: row is written (retention visits only logs holding an old row; a record written again today
        #: keeps its row new).
        self._write_retention = write_retention
        #: Sources whose events (without an id of their own) update another source's records: the
        #: source whose records they are (that source's `progressFrom`, shared.sources.base.progress_keys).
        self._keyed_as = dict(progress_keys or {})
        #: Sources whose format can void events (None: any source may).
        self._voiding_sources = None if voiding_sources is None else frozenset(voiding_sources)
        #: Sources with the registerContent option, and the languageTag of the content they register.
        self._content_languages = dict(content_languages or {})
        self._state = state
        self._resolver = resolver or Resolver(graph)
        self._shared_id_sources = frozenset(shared_id_sources)
        self._claim_lease = claim_lease
        self._clock = clock
        #: Events waiting for their activity's turn (`_sync_together`), by activity and owner.
        self._waiting: dict[tuple[str, ActivityOwner], list[_Waiting]] = {}
        self._turns: dict[str, _Turn] = {}

    async def apply(
        self, event: CanonicalEvent, *, retry: bool = False, received_at: datetime | None = None
    ) -> UpsertResult:
        """Apply one event with as few state-store requests as its source allows. `received_at`: when
        the bridge accepted it (the queue message's), kept in its delivery row for `trace`.

        `retry`: an earlier attempt at this message may have written to Graph and not lived to record
        it (its worker died, or Graph's answer was lost): then a row another worker wrote meanwhile
        no longer says what Graph holds, so this attempt writes the whole record, not what differs.

        From a source that cannot void, an update costs three: the activity's row and log read
        together, the row and the event's entry written together (ETag-guarded), and the delivery row
        inserted if absent (present: a copy applied it first, so this one is a redelivery). A source
        that can void uses `_apply_voidable`, which names the activity in the delivery row first."""
        if self._voiding_sources is None or event.source in self._voiding_sources:
            return await self._apply_voidable(event, retry, received_at)
        try:
            learner_id, found_by = await _guarded(self._resolver.resolve_learner(event.learner, event.source))
            activity_id = self._activity_id(event, learner_id)
            result = await self._sync_registering(
                event, activity_id, owner_of(event, learner_id), await self._contribution(event), retry
            )
        except DeliveryFailure:
            # The lean path learns that an event is a redelivery only after applying it. When applying
            # it again fails (its learner has left Entra since, Graph is throttling), one applied
            # already is acknowledged as the duplicate it is, not parked.
            if not await self._counted_if_applied(event, received_at):
                raise
            return UpsertResult.DEDUPLICATED
        found = await self._state.insert_delivery(
            DeliveryRecord(
                event.source,
                event.event_id,
                activity_id,
                "applied",
                1,
                received_at=received_at,
                learner_found_by=found_by,
            )
        )
        if found is None:
            return result
        await self._applied(found, event, activity_id, received_at, found_by)
        if found.voided_by:  # cannot come from a source that cannot void; handled all the same
            await self._withdraw(event.source, event.event_id, activity_id, found.voided_by, retry)
        return UpsertResult.DEDUPLICATED if found.status == "applied" else result

    def _activity_id(self, event: CanonicalEvent, learner_id: str) -> str:
        shared = event.source in self._shared_id_sources
        return activity_id_for(event, learner_id, shared, self._keyed_as.get(event.source))

    def _key_source(self, source: str) -> str:
        """The source whose records `source`'s events are keyed as (itself unless `progressFrom`)."""
        return self._keyed_as.get(source, source)

    def _is_derived(self, activity_id: str, owner: ActivityOwner) -> bool:
        """Whether the record is addressed by learner and course (the id its owner's events derive)."""
        key_source = self._key_source(owner.source)
        return activity_id == derived_activity_id(key_source, owner.learner_user_id, owner.course_id)

    async def _contribution(self, event: CanonicalEvent) -> EventEntry:
        """The event's entry, its assignment's assigner resolved like a learner. An assigner Entra does
        not know (one who left) is not stated (assignerUserId is optional in Graph): the assignment
        stands, with the assigner an earlier statement named, if any (merge.current_assignment). Any
        other refusal (an `account` on a source without accountAttribute: its configuration, not a
        person who left) keeps the event, with its reason, as it would for the learner."""
        assigner = event.assignment.assigner if event.assignment is not None else None
        assigner_id = None
        if assigner is not None:
            try:
                assigner_id = await _guarded(self._resolver.learner_user_id(assigner, event.source))
            except PermanentFailure as failure:
                if failure.reason != LEARNER_NOT_FOUND:
                    raise
                log.info("assigner left out: source=%s reason=%s", event.source, failure.reason)
        return contribution(event, assigner_id)

    async def _counted_if_applied(self, event: CanonicalEvent, received_at: datetime | None) -> bool:
        """Whether the event was applied before (then this copy is counted as seen)."""
        seen = await self._state.delivery(event.source, event.event_id)
        if seen is None or seen.status != "applied":
            return False
        await self._applied(seen, event, seen.activity_id, received_at)
        return True

    async def _apply_voidable(
        self, event: CanonicalEvent, retry: bool, received_at: datetime | None = None
    ) -> UpsertResult:
        """Its delivery row names its activity before its entry joins the activity's log, and is read
        again after that, so a voiding (`void`) racing it is never lost; a statement voided before it
        came costs no learner lookup and no Graph call."""
        seen = await self._state.delivery(event.source, event.event_id)
        if seen is not None and seen.status == "applied":
            await self._state.save_delivery(replace(seen, seen=seen.seen + 1))
            if seen.voided_by and seen.activity_id:  # a withdrawal cut short (throttled) is finished now
                await self._withdraw_if_possible(
                    event.source, event.event_id, seen.activity_id, seen.voided_by, retry
                )
            return UpsertResult.DEDUPLICATED
        if seen is not None and seen.voided_by:  # voided before it came: no learner lookup, no record
            return await self._skip_voided(seen, event, seen.activity_id, retry, received_at)
        learner_id, found_by = await _guarded(self._resolver.resolve_learner(event.learner, event.source))
        activity_id = self._activity_id(event, learner_id)
        pending = DeliveryRecord(event.source, event.event_id, activity_id, "pending", 0)
        await self._state.save_delivery(replace(seen, activity_id=activity_id) if seen else pending)
        named = await self._state.delivery(event.source, event.event_id)
        if named is not None and named.voided_by:  # voided since the first look
            return await self._skip_voided(named, event, activity_id, retry, received_at)
        result = await self._sync_registering(
            event, activity_id, owner_of(event, learner_id), await self._contribution(event), retry
        )
        await self._applied(seen, event, activity_id, received_at, found_by)
        return result

    async def _skip_voided(
        self,
        seen: DeliveryRecord,
        event: CanonicalEvent,
        activity_id: str,
        retry: bool,
        received_at: datetime | None = None,
    ) -> UpsertResult:
        """An event withdrawn before its entry joined a log: withdraw any entry an interrupted earlier
        attempt may have added, and acknowledge it (a parked one's dead letter goes: it asks for
        nothing now). When the record cannot be written now (its course is not in Viva Learning yet),
        the activity's other events, parked themselves, write it without this one when they can."""
        assert seen.voided_by is not None
        if activity_id:
            await self._withdraw_if_possible(event.source, event.event_id, activity_id, seen.voided_by, retry)
        await self._applied(seen, event, activity_id, received_at)
        return UpsertResult.UNCHANGED

    async def _applied(
        self,
        seen: DeliveryRecord | None,
        event: CanonicalEvent,
        activity_id: str,
        received_at: datetime | None = None,
        found_by: str | None = None,
    ) -> None:
        """The event's delivery row says applied; `received_at` is kept once written (the first copy
        applied says when the event was accepted: a redelivery's own time would hide it), and so is how
        its learner was found (`found_by`, Resolver.resolve_learner)."""
        count = (seen.seen + 1) if seen else 1
        received = (seen.received_at if seen else None) or received_at
        by = (seen.learner_found_by if seen else None) or found_by
        await self._state.save_delivery(
            DeliveryRecord(
                event.source,
                event.event_id,
                activity_id,
                "applied",
                count,
                received_at=received,
                learner_found_by=by,
            )
        )
        if seen is not None and seen.status == "failed":  # parked or dead-lettered before: resolved now
            await self._state.delete_dead_letter(event.source, event.event_id)

    async def _sync_registering(
        self, event: CanonicalEvent, activity_id: str, owner: ActivityOwner, entry: EventEntry, rewrite: bool
    ) -> UpsertResult:
        """`_sync`; for a source that registers content, an unknown course the event describes (title
        and URL) is registered and the activity synced again instead of the event being parked. Only
        on contentNotFound: the steady state costs no extra Graph call."""
        try:
            return await self._sync_together(activity_id, owner, entry, rewrite)
        except PermanentFailure as failure:
            if failure.reason != "contentNotFound" or not await self._register_content(event):
                raise
        return await self._sync_together(activity_id, owner, entry, rewrite)  # logged once (by key)

    async def _sync_together(
        self, activity_id: str, owner: ActivityOwner, entry: EventEntry, rewrite: bool
    ) -> UpsertResult:
        """`_sync`, one activity at a time in this worker (events of one activity keep their order;
        different activities run concurrently), and events of one activity that arrive together (a
        queue batch, several statements of one delivery) cost one Graph write: whoever takes the
        activity's turn syncs every entry waiting by then, and the others take its answer (the whole record
        is written when any of them is a retry)."""
        mine = _Waiting(entry, asyncio.get_running_loop().create_future(), rewrite)
        self._waiting.setdefault((activity_id, owner), []).append(mine)
        turn = self._turns.setdefault(activity_id, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                await asyncio.sleep(0)  # let events started with this one join it
                if not mine.answer.done():
                    return await self._sync_group(
                        activity_id, owner, self._waiting.pop((activity_id, owner)), mine
                    )
                answer = mine.answer.result()  # raises the group's failure
                if isinstance(answer, UpsertResult):
                    return answer
                return await _guarded(
                    self._sync(activity_id, owner, [entry], rewrite=rewrite)
                )  # group failed
        finally:
            turn.users -= 1
            if not turn.users:
                del self._turns[activity_id]

    async def _sync_group(
        self, activity_id: str, owner: ActivityOwner, group: list[_Waiting], leader: _Waiting
    ) -> UpsertResult:
        """Sync the group's entries together; every member gets the answer. A permanent failure may be
        one member's alone (a redelivery in the group changes nothing and cannot fail): each member
        then tries on its own. A wait (throttling, an outage) is everyone's."""
        others = [w for w in group if w is not leader]
        try:
            rewrite = any(w.rewrite for w in group)
            result = await _guarded(self._sync(activity_id, owner, [w.entry for w in group], rewrite=rewrite))
        except PermanentFailure:
            if not others:
                raise
            for other in others:
                other.answer.set_result(_ALONE)
            return await _guarded(self._sync(activity_id, owner, [leader.entry], rewrite=leader.rewrite))
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else TransientFailure("interrupted", "Cancelled.")
            for other in others:
                other.answer.set_exception(failure)
            raise
        for other in others:
            other.answer.set_result(result)
        return result

    async def _register_content(self, event: CanonicalEvent) -> bool:
        language = self._content_languages.get(event.source)
        course = event.course
        if language is None or course.title is None or course.url is None:
            return False
        await _guarded(
            self._graph.put_content(course.external_id, ContentWrite(course.title, course.url, language))
        )
        log.info("content registered: source=%s course=%s", event.source, course.external_id)
        return True

    async def void(
        self, source: str, voided_event_id: str, voiding_event_id: str, *, retry: bool = False
    ) -> UpsertResult:
        """Withdraw the effect of an event (an xAPI voided statement), whenever it arrives.

        The voiding is written to the event's delivery row, then the row is read: if it names the
        event's activity, the event's entry is withdrawn here. An event being applied writes its
        activity to the row, then reads it (`apply`). Of two such write-then-read pairs on one row, at
        least one sees the other's write, so the voiding is never lost (both acting is harmless).
        """
        await self._state.void_delivery(source, voided_event_id, voiding_event_id)
        target = await self._state.delivery(source, voided_event_id)
        if target is not None and target.activity_id:
            await self._withdraw_if_possible(
                source, voided_event_id, target.activity_id, voiding_event_id, retry
            )
        return UpsertResult.VOIDED

    async def _withdraw_if_possible(
        self, source: str, event_id: str, activity_id: str, voided_by: str, rewrite: bool
    ) -> None:
        """`_withdraw`; the voiding is recorded whatever happens, and when the record cannot be written
        now because its course is not in Viva Learning yet (`contentNotFound`) its parked events write
        it, without the voided one, when they can. Any other refusal (sync off, no plan, the learner's
        licence gone, ...) raises: Graph still shows what was voided, so the voiding is parked or
        dead-lettered with its reason like any other event, and replayed after the fix."""
        try:
            await self._withdraw(source, event_id, activity_id, voided_by, rewrite)
        except PermanentFailure as failure:
            if failure.reason not in _WITHDRAWN_LATER:
                raise
            log.info("voiding recorded, record not written now: source=%s reason=%s", source, failure.reason)

    async def _withdraw(
        self, source: str, event_id: str, activity_id: str, voided_by: str, rewrite: bool = False
    ) -> None:
        """Take a voided event out of its activity and bring Graph in line (idempotent)."""
        await self._state.void_event(activity_id, source, event_id, voided_by)
        # The row is written even when nothing changes: a worker folding an older log (the statement
        # itself, being applied) then loses its row write and folds again, with the voiding.
        await _guarded(
            self._sync(activity_id, None, [], touch=True, rewrite=rewrite, cause=f"{source}:{voided_by}")
        )

    async def resync(self, activity_id: str) -> UpsertResult:
        """Write what the activity's events call for again, from the row as it now stands (reconcile
        --repair: a row whose Graph id was cleared is created again, one whose state was set to what
        Graph holds gets the PATCH back to the events' fold)."""
        return await _guarded(self._sync(activity_id, None, [], cause="reconcile"))

    async def applied(self, source: str, event_id: str) -> bool:
        """Whether the event's delivery row says applied."""
        seen = await self._state.delivery(source, event_id)
        return seen is not None and seen.status == "applied"

    async def mark(self, source: str, event_id: str, status: str) -> bool:
        """Record that an event was parked or dead-lettered (a later success overwrites it); False, and
        nothing written, when a copy of it was applied already (its delivery row says so, also when
        that copy was applied on another instance a moment ago): then there is nothing to park or
        dead-letter."""
        return await self._state.mark_unapplied(source, event_id, status)

    async def _sync(
        self,
        activity_id: str,
        owner: ActivityOwner | None,
        entries: Sequence[EventEntry],
        *,
        touch: bool = False,
        rewrite: bool = False,
        cause: str | None = None,
    ) -> UpsertResult:
        """`_sync_record`, its Graph writes recorded as caused by `cause` (by default the entries' events)."""
        token = _CAUSE.set(cause if cause is not None else _cause_of(entries))
        try:
            return await self._sync_record(activity_id, owner, entries, touch=touch, rewrite=rewrite)
        finally:
            _CAUSE.reset(token)

    def _written(
        self,
        row: ActivityState,
        request: str,
        failure: GraphError | GraphUnavailable | None = None,
        *,
        status: int | None = None,
    ) -> ActivityState:
        """The row with this Graph write added to its history (shared.state.models.GraphWrite):
        written (`status`: Graph's, by default the documented one), or refused (`failure`)."""
        reason: str | None
        if failure is None:
            status, reason = status or _WRITTEN[request], None
        elif isinstance(failure, GraphError):
            status, reason = failure.status, classify(failure).reason
        else:
            status, reason = None, "graphUnavailable"
        now = self._clock()
        if self._write_retention is not None:
            cutoff = now - self._write_retention
            row = replace(row, writes=tuple(w for w in row.writes if w.at >= cutoff))
        return noted(row, GraphWrite(request, now, status, reason, _CAUSE.get()))

    async def _refused(
        self, row: ActivityState, request: str, failure: GraphError | GraphUnavailable
    ) -> None:
        """Record a write Graph refused or did not answer on the row, before the failure goes on to
        the queue (best effort: a row another worker changed meanwhile keeps its own history)."""
        with contextlib.suppress(Conflict):
            await self._state.save_activity(self._written(row, request, failure))

    async def _sync_record(
        self,
        activity_id: str,
        owner: ActivityOwner | None,
        entries: Sequence[EventEntry],
        *,
        touch: bool = False,
        rewrite: bool = False,
    ) -> UpsertResult:
        """Bring the Graph record in line with the activity's events. `owner` and `entries` are the
        arriving events' (None and none for a voiding, which changes the log only). The entries join
        the log with the row's next write, so the log never holds what lost a race.

        A worker whose row write loses to another's after it wrote to Graph cannot know whose Graph
        write landed last (a slow PATCH or DELETE may land after a newer one): it writes the whole
        record again, from the events as they are now (so does a retry: `rewrite`)."""
        for _ in range(_ATTEMPTS):
            row, log = await self._state.load(activity_id)
            # An entry already logged (a redelivery, or an attempt cut short) keeps what it said first.
            new = _unlogged(log, entries)
            try:
                if row is None:
                    if owner is None:
                        return UpsertResult.UNCHANGED  # voided before anything was written
                    row = await self._state.claim_activity(activity_id, owner, new)  # Conflict: lost the race
                    return await self._create(row, claimed=True)
                if owner is not None and row.owner is not None and not self._admits(row, owner):
                    raise _owner_mismatch("The activity belongs to another source, learner or course.")
                if row.graph_id is None:
                    for item in new:  # for whoever creates the record (the row's ETag is theirs)
                        await self._state.add_event(activity_id, item)
                    return await self._create(row, claimed=False)
                return await self._update(row, log, new, rewrite, touch=touch)
            except _StaleGraphWrite:
                rewrite = True
            except Conflict:
                continue  # another worker wrote the row: read it again
        raise TransientFailure("concurrentUpdates", "The activity kept changing under this worker.")

    def _admits(self, row: ActivityState, owner: ActivityOwner) -> bool:
        """Same learner and course, and the record's own source (or the id derived for the event's
        source: that id is the source's own, whoever created its row); another source's record only
        when it is addressed by an id shared with other systems and both sources say their ids are such
        (a derived id is its source's alone, whoever can compute it)."""
        assert row.owner is not None
        if not row.owner.admits(owner):
            return False
        if row.owner.source == owner.source:
            return True
        if row.activity_id == derived_activity_id(owner.source, owner.learner_user_id, owner.course_id):
            # the source's own derived id, whoever created the row: a source its progressFrom named
            # then (the option taken out since) reached it as if it were this source
            return True
        if self._key_source(row.owner.source) == self._key_source(owner.source) and self._is_derived(
            row.activity_id, row.owner
        ):
            return True  # a source whose progress the record's source takes (progressFrom), or the reverse
        shared = self._shared_id_sources
        return {row.owner.source, owner.source} <= shared and not self._is_derived(row.activity_id, row.owner)

    async def _update(
        self,
        row: ActivityState,
        log: list[EventEntry],
        new: list[EventEntry],
        rewrite: bool = False,
        *,
        touch: bool = False,
    ) -> UpsertResult:
        """PATCH (or DELETE) what the events call for, then save the row with `new` entries; `rewrite`:
        the whole record, whatever the row says was written last."""
        assert row.graph_id is not None
        desired = fold([*log, *new])
        if desired is None:  # every event behind the record was voided: no record at all
            try:
                gone = await self._graph.delete_activity(row.graph_id)
            except (GraphError, GraphUnavailable) as exc:
                await self._refused(row, "delete", exc)
                raise
            # A record gone already: Graph's 404, and nothing left to delete.
            deleted = self._written(cleared(row), "delete", status=None if gone else 404)
            await _save_after_write(self._state, deleted, new)
            return UpsertResult.DELETED
        if not same_kind(state_of(row), desired):
            return await self._recreate(row, new)
        changes = whole(desired) if rewrite else patch(state_of(row), desired)
        if changes is None:
            if new or touch:  # under the row's ETag: a worker deciding on an older log must fold again
                await self._state.save_activity(row, new)
            return UpsertResult.UNCHANGED
        try:
            await self._graph.update_activity(row.graph_id, changes)
        except GraphError as exc:
            if exc.status != 404:
                await self._refused(row, "patch", exc)
                raise
            # Deleted behind the bridge's back (or by a concurrent voiding): forget the Graph id and
            # let the next pass create the record again.
            await self._state.save_activity(self._written(cleared(row), "patch", exc))
            raise Conflict(row.activity_id) from None
        except GraphUnavailable as exc:
            await self._refused(row, "patch", exc)
            raise
        await _save_after_write(self._state, self._written(_with(row, desired), "patch"), new)
        return UpsertResult.UPDATED

    async def _recreate(self, row: ActivityState, new: list[EventEntry]) -> UpsertResult:
        """The record must change its @odata.type (self-initiated <-> assignment) or its assignmentType,
        which no PATCH can do: DELETE it, then create it as the events call for, with their progress
        and completion (the fold carries them). The row is saved in between, without a Graph id and
        claimed by this worker, under its ETag: the creation then takes the ordinary path (look up,
        POST), so a worker that dies between the two writes leaves a claim that lapses and a record
        that the next attempt creates. The DELETE of a record gone already is no failure."""
        assert row.graph_id is not None
        try:
            await self._graph.delete_activity(row.graph_id)
        except (GraphError, GraphUnavailable) as exc:
            await self._refused(row, "delete", exc)
            raise
        unwritten = replace(self._written(cleared(row), "delete"), claimed_at=self._clock())
        try:
            claimed = await self._state.save_activity(unwritten, new)
        except Conflict:
            raise _StaleGraphWrite(row.activity_id) from None
        await self._create(claimed, claimed=True)
        return UpsertResult.UPDATED

    async def _create(self, row: ActivityState, claimed: bool) -> UpsertResult:
        now = self._clock()
        if not claimed:
            if row.claimed_at is not None and now - row.claimed_at < self._claim_lease:
                # Look again soon (a creation takes a second or two), and at the latest when the lease
                # of a worker that crashed runs out.
                remaining = (row.claimed_at + self._claim_lease - now).total_seconds()
                raise TransientFailure(
                    "activityBeingCreated",
                    "Another worker is creating this activity.",
                    retry_after=min(remaining, _LOOK_AGAIN) + random.uniform(0.5, 2.0),
                )
            row = await self._state.save_activity(replace(row, claimed_at=now))  # take over a stale claim
        tried: list[ActivityState] = []  # the row with each refused POST noted
        try:
            return await self._create_claimed(row, tried)
        except BaseException:
            with contextlib.suppress(Conflict):  # let the next attempt (a retry, a replay) claim it at once
                released = replace(row, claimed_at=None)
                await self._state.save_activity(tried[-1] if tried else released)
            raise

    async def _create_claimed(self, row: ActivityState, tried: list[ActivityState]) -> UpsertResult:
        """Look up, then POST; on a throttled or failed POST wait briefly as Graph asks and look up
        again before POSTing again (the POST may have landed): a retried POST never duplicates."""
        assert row.owner is not None  # rows are claimed with their owner
        desired = fold(await self._state.events(row.activity_id))
        if desired is None:  # everything said so far was voided, or says "not started"
            # ...but an earlier attempt's POST may have landed (its answer lost): a record found is
            # brought in line (deleted, unless it predates the bridge).
            existing = await self._graph.get_activity(row.activity_id)
            if existing is None:
                await self._state.save_activity(replace(row, claimed_at=None))
                return UpsertResult.UNCHANGED
            return await self._adopt(row, existing, await self._resolver.content_id(row.owner.course_id))
        content_id = await self._resolver.content_id(row.owner.course_id)
        for attempt in range(_POST_ATTEMPTS):
            existing = await self._graph.get_activity(row.activity_id)
            if existing is not None:  # a previous POST landed, or the record predates the bridge
                # (the refused attempts before it stay in the history)
                return await self._adopt(
                    replace(row, writes=tried[-1].writes) if tried else row, existing, content_id
                )
            try:
                created = await self._graph.create_activity(
                    row.activity_id, row.owner.learner_user_id, content_id, desired
                )
            except (GraphError, GraphUnavailable) as exc:
                released = tried[-1] if tried else replace(row, claimed_at=None)
                tried.append(self._written(released, "create", exc))
                await _pause_before_retry(exc, attempt)
                continue
            written = tried[-1] if tried else row
            await self._state.save_activity(
                self._written(
                    _with(replace(row, graph_id=created.id, writes=written.writes), desired), "create"
                )
            )
            return UpsertResult.CREATED
        raise TransientFailure(
            "conflict", "Graph reported the activity as existing but it cannot be read yet."
        )

    async def _adopt(self, row: ActivityState, existing: ActivityRecord, content_id: str) -> UpsertResult:
        """Take over a record found by external id. One that only a shared id can have reached may
        predate the bridge: what it says becomes a floor (a baseline entry no voiding withdraws).
        Under a derived or namespaced id the record is the bridge's own, left by an attempt whose
        answer was lost: it is simply brought in line with the events, voidings included."""
        assert row.owner is not None
        if (existing.learner_user_id.casefold(), existing.learning_content_id) != (
            row.owner.learner_user_id.casefold(),
            content_id,
        ):
            raise _owner_mismatch(
                "Graph already has a record with this external id for another learner or course; "
                "it is not adopted."
            )
        foreign = row.owner.source in self._shared_id_sources and not self._is_derived(
            row.activity_id, row.owner
        )
        if foreign:
            await self._state.add_event(row.activity_id, graph_baseline(existing))
        adopted = await self._state.save_activity(
            _with(replace(row, graph_id=existing.id), state_of(existing))
        )
        return await self._update(adopted, await self._state.events(row.activity_id), [])


async def _pause_before_retry(exc: GraphError | GraphUnavailable, attempt: int) -> None:
    """Wait briefly before looking up and POSTing again, or give the failure back (to the queue)."""
    last = attempt + 1 == _POST_ATTEMPTS
    if isinstance(exc, GraphUnavailable):  # a timeout may have cost 30 s already: the queue backs off
        raise exc
    if exc.status == 409:  # it exists after all: look it up again
        await asyncio.sleep(_jittered(0.2 * 2**attempt))
        return
    if not exc.transient or last:
        raise exc
    wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2**attempt
    if wait > INLINE_WAIT:
        raise exc  # a long wait is the queue's job
    await asyncio.sleep(_jittered(wait))


class _StaleGraphWrite(Conflict):
    """The row changed while this worker wrote to Graph: its write may have landed after a newer one."""


async def _save_after_write(state: StateStore, row: ActivityState, new: list[EventEntry]) -> None:
    try:
        await state.save_activity(row, new)
    except Conflict:
        raise _StaleGraphWrite(row.activity_id) from None


def _cause_of(entries: Sequence[EventEntry]) -> str:
    """The events a write is for, as "source:eventId" (a long group by its first ones)."""
    cause = ", ".join(f"{e.source}:{e.event_id}" for e in entries)
    return cause if len(cause) <= CAUSE_CHARACTERS else cause[: CAUSE_CHARACTERS - 1] + "…"


def _unlogged(log: list[EventEntry], entries: Sequence[EventEntry]) -> list[EventEntry]:
    """The entries not in the log yet, each once (the first copy of a key wins)."""
    seen = {(e.source, e.event_id) for e in log}
    new = []
    for entry in entries:
        if (entry.source, entry.event_id) not in seen:
            seen.add((entry.source, entry.event_id))
            new.append(entry)
    return new


class _Alone:
    """The answer to a group member when the group failed for good: try on your own."""


_ALONE = _Alone()


@dataclass
class _Waiting:
    entry: EventEntry
    answer: asyncio.Future[UpsertResult | _Alone]
    rewrite: bool = False


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def _jittered(seconds: float) -> float:
    return float(seconds + random.uniform(0, 0.25 * seconds + 0.1))


def _owner_mismatch(detail: str) -> PermanentFailure:
    return PermanentFailure("activityOwnerMismatch", detail)


def _with(row: ActivityState, state: ActivityWrite) -> ActivityState:
    return replace(
        row,
        status=state.status,
        completion_percentage=state.completion_percentage,
        started_at=state.started_at,
        completed_at=state.completed_at,
        assignment_type=state.assignment_type,
        assigned_at=state.assigned_at,
        due_at=state.due_at,
        notes=state.notes,
        assigner_user_id=state.assigner_user_id,
    )


def cleared(row: ActivityState) -> ActivityState:
    """The row of an activity with no Graph record: its owner stays, for when it is created again
    (also `forget`'s, for a record no event calls for any more)."""
    return replace(_with(row, ActivityWrite()), graph_id=None, claimed_at=None)


async def _guarded(work: Awaitable[T]) -> T:
    """Graph's failures as the queue needs them."""
    try:
        return await work
    except GraphUnavailable as exc:
        raise TransientFailure("graphUnavailable", str(exc)) from None
    except GraphError as exc:
        raise classify(exc) from None


#: What to do about each of the learning API's documented refusals (shared.graph.errors): the letter's
#: detail. Fixed text: Graph's message is the same for every learner, and no learner data goes in.
FIXES = {
    LEARNER_NOT_LICENSED: (
        "The learner has no Viva Learning licence (Graph 403: the user license isn't valid to perform the "
        "operation). Assign them a licence that includes Viva Learning."
    ),
    TENANT_NOT_LICENSED: (
        "The tenant has no service plan that includes Viva Learning (Graph 403: you don't have an "
        "adequate service plan). A Microsoft 365 administrator must add one; then "
        "`replay --reason tenantNotLicensed`."
    ),
    PROVIDER_NOT_ENABLED: (
        "Course activity sync is off for the learning provider BRIDGE_PROVIDER_REGISTRATION_ID names (Graph "
        "400: this provider isn't enabled for the given tenant). Set the provider's "
        "isCourseActivitySyncEnabled to true (`python -m shared.cli provider enable-sync`, signed in as an "
        "admin); then `replay --reason providerNotEnabled`."
    ),
    CONTENT_OF_ANOTHER_PROVIDER: (
        "The course's learning content was created by another learning provider than the one "
        "BRIDGE_PROVIDER_REGISTRATION_ID names (Graph 403: the provider isn't valid to create course "
        "activity for the given learning content). Register the course under this provider, or point "
        "the setting at the provider that owns it; then `replay --reason contentOfAnotherProvider`."
    ),
    PROVIDER_NOT_REGISTERED: (
        "BRIDGE_PROVIDER_REGISTRATION_ID names no learning provider registered for this tenant (Graph "
        "400: make sure the registrationId you entered is valid or registered for your tenant). Set it to "
        "the provider's id (`python -m shared.cli provider show --id ID`, signed in as an admin, checks "
        "one), or register the provider with `provider register`, which writes its id into the "
        "settings; then `replay --reason providerNotRegistered`."
    ),
    APP_ROLE_MISSING: (
        "The app's identity lacks the Graph application permission for course activities (Graph 403: "
        "your account doesn't have access to this report or data). Grant it "
        "LearningSelfInitiatedCourse.ReadWrite.All (and LearningAssignedCourse.ReadWrite.All with "
        "assignments): `azd provision` with BRIDGE_GRANT_GRAPH_PERMISSIONS true, or an administrator as in "
        "docs/deploy/index.md, step 3 (`python -m shared.cli doctor` shows the roles the token carries); "
        "then "
        "`replay --reason appRoleMissing`."
    ),
}


def classify(exc: GraphError) -> TransientFailure | PermanentFailure:
    """Throttling (429, or 503/504 with a known wait: Retry-After or the message's minutes) is waited
    out on the queue; other 5xx and 401 use the host's retries; the learning API's documented refusals
    get their own reason (a learner without a licence is parked, shared.delivery.deadletters); the rest
    cannot succeed by retrying."""
    documented = exc.documented_reason
    if documented is not None:
        return PermanentFailure(documented, FIXES[documented], exc.code)
    if exc.status == 429:
        delay = exc.retry_after if exc.retry_after is not None else DEFAULT_THROTTLE_DELAY
        return TransientFailure("graphThrottled", f"Graph {exc.status} {exc.code}", exc.code, delay)
    if exc.transient and exc.retry_after is not None:
        return TransientFailure("graphThrottled", f"Graph {exc.status} {exc.code}", exc.code, exc.retry_after)
    if exc.transient or exc.status == 401:
        return TransientFailure("graphTransient", f"Graph {exc.status} {exc.code}", exc.code)
    if exc.status == 403:
        return PermanentFailure("graphForbidden", f"{exc.code}: {exc.message}", exc.code)
    if exc.status == 404:
        return PermanentFailure("graphNotFound", f"{exc.code}: {exc.message}", exc.code)
    return PermanentFailure("graphRejected", f"Graph {exc.status} {exc.code}: {exc.message}", exc.code)
