"""Daily maintenance passes that no function timeout can cut short.

The Functions host cancels an invocation at `functionTimeout` and restarts the worker (see
shared.delivery.deadline), so a pass whose work grows with the data (reconcile reads every record back
at a paced rate; retention folds every old log) must not be one invocation. Each daily job runs as a
timer every few minutes; a run does nothing unless a pass is due (the latest daily occurrence has no
finished pass yet) or unfinished, works within the maintenance time budget, and leaves a checkpoint
(its cursor and the counts so far) in the state store for the next run. The pass's counts are logged
once, when it finishes. Timers are singletons in Azure (one instance holds the listener's blob lease),
so two runs of one job never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Protocol, runtime_checkable

from shared.state.models import JobCheckpoint


@dataclass(frozen=True)
class DailyAt:
    """A time of day (UTC) a pass is due at."""

    hour: int
    minute: int

    def latest(self, now: datetime) -> datetime:
        """The occurrence at or before `now`."""
        today = datetime.combine(now.date(), time(self.hour, self.minute), tzinfo=now.tzinfo)
        return today if today <= now else today - timedelta(days=1)


@runtime_checkable
class JobStore(Protocol):
    async def job_checkpoint(self, name: str) -> JobCheckpoint | None: ...
    async def save_job_checkpoint(self, checkpoint: JobCheckpoint) -> None: ...


async def due_pass(store: JobStore, name: str, schedule: DailyAt, now: datetime) -> JobCheckpoint | None:
    """The pass a run should work on: an unfinished one goes on (however old: a pass longer than a day
    still finishes), else a new one for the latest occurrence if it has none. None when nothing is due.
    The very first run only records the latest occurrence as done, as a new timer does not fire for
    occurrences before it existed."""
    latest = schedule.latest(now)
    saved = await store.job_checkpoint(name)
    if saved is None:
        await store.save_job_checkpoint(JobCheckpoint(name, latest, finished=True))
        return None
    if not saved.finished:
        return saved
    if saved.occurrence >= latest:
        return None
    return JobCheckpoint(name, latest, finished=False)


async def record_run(
    store: JobStore, checkpoint: JobCheckpoint, *, finished: bool, cursor: str | None, counts: dict[str, int]
) -> JobCheckpoint:
    """Save where the pass stands after one more run."""
    saved = replace(checkpoint, finished=finished, cursor=cursor, counts=counts, runs=checkpoint.runs + 1)
    await store.save_job_checkpoint(saved)
    return saved
