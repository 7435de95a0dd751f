"""Bounded state: what the bridge keeps about events older than the retention period.

Deliveries (the deduplication rows) and event-log entries grow with every event; past
`BRIDGE_RETENTION_DAYS` they are no longer needed one by one. An activity's old entries are folded
into one baseline entry carrying their folded state: the fold is a join of max/min operations
(merge.py), so fold(baseline + newer entries) is exactly fold(old + newer entries), and the record
stays what it was. Rows that record a voiding are kept (small tombstones): a voided statement that
arrives years late is still refused.

The log is read as the queue side reads it: a voiding recorded in a row of its own applies to the copy
of its event that the activity row holds, so a voided event is never folded. Every baseline has a key
of its own and is written as a row of its own, in the same transaction as the deletion of what it
folds (ETag-guarded, the activity row's too when entries it holds are folded): a run that stops half
way, or a worker writing meanwhile, leaves a log that folds exactly as before.

An activity row's Graph write history (`trace`: shared.state.models.GraphWrite, at most WRITE_HISTORY)
is bounded by count on every write; retention also drops the writes older than the period from the
rows of the logs it visits (ETag-guarded, like the fold), so that nothing about an event outlives the
period there either.

What the period costs, and docs/operate.md says so: an event older than it counts as history. Its
redelivery adds an entry again (the fold does not change: the baseline holds it already); a voiding
of it withdraws nothing (nor does one that reaches the log while the run folds that event). Dead
letters an operator did not act on within the period are removed with a count in the log; parked
events (still being retried) never are, and neither is the delivery row of an event that still has a
dead letter.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from shared.delivery.merge import deciding_statements, fold
from shared.events.model import CourseStatus
from shared.state.models import (
    ActivityState,
    DeadLetterRecord,
    EventEntry,
    LetterState,
    LogCopy,
    LogSnapshot,
)
from shared.state.store import Conflict

#: A source name no configured source can have (names are a-z, 0-9 and '-'): every baseline's source.
BASELINE_SOURCE = "~retention"


def baseline(entries: Iterable[EventEntry]) -> EventEntry | None:
    """One entry that folds like all of `entries` together, their progress (an assignment statement
    among them gives its progress only: retention folds only statements the assignment no longer
    depends on, see `foldable`); None when none of them is live. Each has a key of its own
    (`baseline-<random>`): two baselines never share a key, so no write of one (an activity row
    spilling its entries, say) can ever replace another."""
    kept = [replace(e, assignment=None) for e in entries]
    folded = fold(kept)
    if folded is None or folded.status is None:
        return None
    return EventEntry(
        source=BASELINE_SOURCE,
        event_id=f"baseline-{os.urandom(12).hex()}",
        occurred_at=max(e.occurred_at for e in kept if e.voided_by is None),
        status=folded.status,
        completion_percentage=folded.completion_percentage,
        started_at=folded.started_at,
        completed_at=folded.completed_at,
    )


def compactable(entry: EventEntry, deciding: Collection[tuple[str, str]] = ()) -> bool:
    """Entries folded into the baseline: live ones that call for a record (a voiding's tombstone
    stays as it is; a "not started" one without an assignment, which only an adopted Graph record can
    be, stays too), and baselines. An assignment statement folds too (a 360Learning path states its
    assignment with every status), unless it is one of the log's `deciding` statements
    (merge.deciding_statements: the newest, the last withdrawal, the first since it, the newest
    naming each assigner): those keep their own time, which "the newest statement wins" needs; the
    others' assignments decide nothing, now, when newer statements come or when forget takes an
    assigner out, and only their progress goes into the baseline."""
    if entry.voided_by is not None:
        return False
    if entry.assignment is not None:
        return (entry.source, entry.event_id) not in deciding
    return entry.source == BASELINE_SOURCE or entry.status is not CourseStatus.NOT_STARTED


def foldable(snapshot: LogSnapshot, cutoff: datetime) -> list[LogCopy]:
    """The copies to fold into one baseline, read as the queue side reads the log: a key is folded
    only when every copy of it is a live entry (no voiding recorded anywhere for it: a voiding kept in
    a row of its own applies to the copy the activity row holds) and each was last written before
    `cutoff`, or it is a baseline (those always fold together). Nothing when fewer than two keys would
    fold: one baseline is already as small as the log gets."""
    by_key: dict[tuple[str, str], list[LogCopy]] = {}
    for copy in snapshot.copies:
        by_key.setdefault(copy.key, []).append(copy)
    live = [
        c.entry
        for copies in by_key.values()
        if not any(c.voided_by or c.entry is None or c.entry.voided_by for c in copies)
        for c in copies[:1]
        if c.entry is not None
    ]
    deciding = deciding_statements(live)
    folded: list[LogCopy] = []
    keys = 0
    for (source, _), copies in by_key.items():
        is_baseline = source == BASELINE_SOURCE
        if all(_foldable(c, cutoff, is_baseline, deciding) for c in copies):
            folded += copies
            keys += 1
    return folded if keys >= 2 else []


def _foldable(
    copy: LogCopy, cutoff: datetime, is_baseline: bool, deciding: Collection[tuple[str, str]]
) -> bool:
    if copy.voided_by or copy.entry is None or not compactable(copy.entry, deciding):
        return False
    return is_baseline or (copy.written_at is not None and copy.written_at < cutoff)


def _combined(entries: Sequence[EventEntry]) -> EventEntry:
    """The baseline of foldable copies; when they hold no progress (statements of a course not
    started, whose assignments decide nothing any more), a "not started" baseline, which folds as
    nothing."""
    merged = baseline(entries)
    if merged is None:
        return EventEntry(
            source=BASELINE_SOURCE,
            event_id=f"baseline-{os.urandom(12).hex()}",
            occurred_at=max(e.occurred_at for e in entries),
            status=CourseStatus.NOT_STARTED,
        )
    return merged


@runtime_checkable
class RetainedStore(Protocol):
    """What retention needs from the state store (TableStateStore and the tests' memory store): the
    primitives; which rows go, and what folds, is decided here."""

    async def purge_deliveries(
        self,
        cutoff: datetime,
        *,
        dry_run: bool,
        keep: Collection[tuple[str, str]] = (),
        stop: Callable[[], bool] = ...,
    ) -> int:
        """Remove delivery rows last written before `cutoff`, except those recording a voiding and
        those of the events in `keep` (source, eventId), until `stop()`."""

    async def purge_dead_letters(
        self, cutoff: datetime, *, dry_run: bool, stop: Callable[[], bool] = ...
    ) -> int:
        """Remove dead letters (not parked ones) whose last failure is before `cutoff`, until `stop()`."""

    def dead_letters(self, *, brief: bool = False) -> AsyncIterator[DeadLetterRecord]: ...

    def log_key(self, activity_id: str) -> str:
        """How `old_logs` names the activity's log."""

    def old_logs(self, cutoff: datetime, after: str | None = None) -> AsyncIterator[str]:
        """Keys of the activity logs holding entries last written before `cutoff`, in key order, from
        the key after `after` on."""

    async def log_snapshot(self, log_key: str) -> LogSnapshot:
        """Every copy of every key of the log, read together."""

    async def fold_log(
        self,
        snapshot: LogSnapshot,
        folded: Sequence[LogCopy],
        combine: Callable[[Sequence[EventEntry]], EventEntry],
    ) -> None:
        """Replace the copies with `combine` of their entries, atomically at every step; Conflict
        when one of them (or the activity row, for copies it holds) changed since the snapshot."""

    async def table_sizes(self) -> dict[str, int]:
        """Rows per state table (a full count: operators' commands only)."""

    async def save_activity(self, state: ActivityState, entries: Sequence[EventEntry] = ()) -> ActivityState:
        """Replace the activity row if its ETag is still `state.etag`; Conflict otherwise."""


async def compact_log(store: RetainedStore, log_key: str, cutoff: datetime, *, dry_run: bool) -> int:
    """Fold the log's old live entries and its baselines into one baseline: how many entries that
    folds away (0 when there was nothing to do). Raises Conflict when a worker changed one of them
    meanwhile (the next run tries again)."""
    snapshot = await store.log_snapshot(log_key)
    folded = foldable(snapshot, cutoff)
    if not folded:
        return 0
    if not dry_run:
        await store.fold_log(snapshot, folded, _combined)
    return len(folded) - 1


async def drop_old_writes(store: RetainedStore, log_key: str, cutoff: datetime, *, dry_run: bool) -> int:
    """Take the Graph writes made before `cutoff` out of the log's activity row: how many (would) go.
    Raises Conflict when a worker wrote the row meanwhile (the next run tries again)."""
    row = (await store.log_snapshot(log_key)).activity
    if row is None:
        return 0
    kept = tuple(w for w in row.writes if w.at >= cutoff)
    old = len(row.writes) - len(kept)
    if old and not dry_run:
        await store.save_activity(replace(row, writes=kept))
    return old


@dataclass
class RetentionReport:
    deliveries_removed: int = 0
    logs_compacted: int = 0
    entries_folded: int = 0
    logs_busy: int = 0
    dead_letters_removed: int = 0
    graph_writes_removed: int = 0
    #: Where a run cut short by its time budget goes on (None: it went through to the end).
    resume_after: str | None = field(default=None, compare=False)
    finished: bool = field(default=True, compare=False)

    def counts(self) -> dict[str, int]:
        """camelCase, as every JSON the CLI prints."""
        return {_camel(f.name): getattr(self, f.name) for f in fields(self) if f.compare}

    def add(self, counts: dict[str, int]) -> None:
        """Counts of earlier runs of the same pass (a pass cut short goes on in the next run)."""
        for f in fields(self):
            if f.compare:
                setattr(self, f.name, getattr(self, f.name) + counts.get(_camel(f.name), 0))


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


#: How often one run reads an activity's log again when a worker changed it while it was folded.
_FOLD_ATTEMPTS = 3


async def apply_retention(
    store: RetainedStore,
    now: datetime,
    days: int,
    *,
    dry_run: bool = False,
    stop: Callable[[], bool] = lambda: False,
    after: str | None = None,
) -> RetentionReport:
    """One retention pass; safe to run while events are being applied and to run twice.

    Logs are compacted in key order from the one after `after`; when `stop()` says so (the timer's time
    budget) the pass ends where it is, unfinished, with `resume_after` set: every step before it is
    whole, and a later pass with the same `now` goes on from there. Dead letters go next, then the
    delivery rows, except those of events that still have a dead letter: that row is how a later
    success (a parked event applied at last, a replay) knows to remove its dead letter, whenever it
    comes. The purges stop with `stop()` too, and what they leave is still old for the next pass."""
    cutoff = now - timedelta(days=days)
    report = RetentionReport()
    async for log_key in store.old_logs(cutoff, after):
        if stop():
            report.finished, report.resume_after = False, after
            return report
        folded = await _compact_busy_aware(store, log_key, cutoff, dry_run=dry_run)
        if folded is None:
            report.logs_busy += 1
        elif folded:
            report.logs_compacted += 1
            report.entries_folded += folded
        report.graph_writes_removed += await _drop_busy_aware(store, log_key, cutoff, dry_run=dry_run)
        after = log_key
    report.dead_letters_removed = await store.purge_dead_letters(cutoff, dry_run=dry_run, stop=stop)
    letters = {
        (letter.source, letter.event_id)
        async for letter in store.dead_letters(brief=True)
        if not (dry_run and _purged(letter, cutoff))
    }
    report.deliveries_removed = await store.purge_deliveries(cutoff, dry_run=dry_run, keep=letters, stop=stop)
    if stop():  # the purges may have stopped short: the next pass goes straight to them
        report.finished, report.resume_after = False, after
    return report


def _purged(letter: DeadLetterRecord, cutoff: datetime) -> bool:
    """Whether `purge_dead_letters` removes the letter: a dry run counts the delivery rows a real run
    purges once their letters are gone (a real run reads the letters left after its purge)."""
    return letter.state is not LetterState.PARKED and letter.last_failure < cutoff


async def _drop_busy_aware(store: RetainedStore, log_key: str, cutoff: datetime, *, dry_run: bool) -> int:
    """`drop_old_writes`, read again when a worker wrote the row meanwhile; 0 when it kept changing
    (they go in a later run)."""
    for _ in range(_FOLD_ATTEMPTS):
        try:
            return await drop_old_writes(store, log_key, cutoff, dry_run=dry_run)
        except Conflict:
            continue
    return 0


async def _compact_busy_aware(
    store: RetainedStore, log_key: str, cutoff: datetime, *, dry_run: bool
) -> int | None:
    """`compact_log`, read again when a worker changed the log meanwhile; None when it kept changing."""
    for _ in range(_FOLD_ATTEMPTS):
        try:
            return await compact_log(store, log_key, cutoff, dry_run=dry_run)
        except Conflict:
            continue
    return None
