"""Bounded state: what the bridge keeps about events older than the retention period.

Deliveries (the deduplication rows) and event-log entries grow with every event; past
`BRIDGE_RETENTION_DAYS` they are no longer needed one by one. An activity's old entries are folded
into one baseline entry carrying their folded state: the fold is a join of max/min operations
(merge.py), so fold(baseline + newer entries) is exactly fold(old + newer entries), and the record
stays what it was. Rows that record a voiding are kept (small tombstones): a voided statement that
arrives years late is still refused.

What the period costs, and the README says so: an event older than it counts as history. Its
redelivery adds an entry again (the fold does not change: the baseline holds it already); a voiding
of it withdraws nothing. Dead letters an operator did not act on within the period are removed with
a count in the log; parked events (still being retried) never are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from shared.delivery.merge import fold
from shared.events.model import CourseStatus
from shared.state.models import EventEntry

#: A source name no configured source can have (names are a-z, 0-9 and '-'): the baseline's key.
BASELINE_SOURCE = "~retention"
BASELINE_EVENT = "baseline"
#: The baseline of the entries an activity row holds itself (TableStateStore), beside the rows' one.
HELD_BASELINE_EVENT = "baseline-held"


def baseline(entries: Iterable[EventEntry]) -> EventEntry | None:
    """One entry that folds like all of `entries` together; None when none of them is live."""
    kept = list(entries)
    folded = fold(kept)
    if folded is None or folded.status is None:
        return None
    return EventEntry(
        source=BASELINE_SOURCE,
        event_id=BASELINE_EVENT,
        occurred_at=max(e.occurred_at for e in kept if e.voided_by is None),
        status=folded.status,
        completion_percentage=folded.completion_percentage,
        started_at=folded.started_at,
        completed_at=folded.completed_at,
    )


def compactable(entry: EventEntry) -> bool:
    """Entries folded into the baseline: live ones that call for a record (a voiding's tombstone
    stays as it is; a "not started" one, which only an adopted Graph record can be, stays too)."""
    return entry.voided_by is None and entry.status is not CourseStatus.NOT_STARTED


@runtime_checkable
class RetainedStore(Protocol):
    """What retention needs from the state store (TableStateStore and the tests' memory store)."""

    async def purge_deliveries(self, cutoff: datetime, *, dry_run: bool) -> int:
        """Remove delivery rows last written before `cutoff`, except those recording a voiding."""

    async def purge_dead_letters(self, cutoff: datetime, *, dry_run: bool) -> int:
        """Remove dead letters (not parked ones) whose last failure is before `cutoff`."""

    def log_key(self, activity_id: str) -> str:
        """How `old_logs` names the activity's log."""

    def old_logs(self, cutoff: datetime) -> AsyncIterator[str]:
        """Keys of the activity logs holding entries last written before `cutoff`."""

    async def compact_log(self, log_key: str, cutoff: datetime, *, dry_run: bool) -> int:
        """Fold the log's live entries older than `cutoff` (and any baseline) into one baseline
        entry, atomically; the number of entries folded away (0 when there was nothing to do).
        Raises Conflict when a worker changed one of them meanwhile (the next run tries again)."""

    async def table_sizes(self) -> dict[str, int]:
        """Rows per state table (a full count: operators' commands only)."""


@dataclass
class RetentionReport:
    deliveries_removed: int = 0
    logs_compacted: int = 0
    entries_folded: int = 0
    logs_busy: int = 0
    dead_letters_removed: int = 0

    def counts(self) -> dict[str, int]:
        """camelCase, as every JSON the CLI prints."""
        return {_camel(name): value for name, value in asdict(self).items()}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


async def apply_retention(
    store: RetainedStore, now: datetime, days: int, *, dry_run: bool = False
) -> RetentionReport:
    """One retention pass; safe to run while events are being applied and to run twice."""
    from shared.state.store import Conflict

    cutoff = now - timedelta(days=days)
    report = RetentionReport()
    async for log_key in store.old_logs(cutoff):
        try:
            folded = await store.compact_log(log_key, cutoff, dry_run=dry_run)
        except Conflict:
            report.logs_busy += 1
            continue
        if folded:
            report.logs_compacted += 1
            report.entries_folded += folded
    report.deliveries_removed = await store.purge_deliveries(cutoff, dry_run=dry_run)
    report.dead_letters_removed = await store.purge_dead_letters(cutoff, dry_run=dry_run)
    return report
