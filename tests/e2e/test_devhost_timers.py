"""Timers run once per app, not once per instance, and a run missed while no instance was up fires once
when one starts: the host's singleton listener lock and schedule monitor, kept in Azurite's blobs as
the host keeps them (TimerListener, ScheduleMonitor, StorageScheduleMonitor, SingletonListener,
BlobLeaseDistributedLockManager)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.storage.blob.aio import BlobServiceClient

from devtools.devhost.host import FunctionSpec, TimerRunner
from devtools.devhost.timers import NEVER, ScheduleStatus, SingletonOptions, TimerStore
from devtools.devhost.worker import Worker
from tests.e2e.stack import Stack

#: Azure's shortest blob lease; the recovery poll short so that a test waits seconds, not a minute.
FAST = SingletonOptions(listener_lock_period=15, listener_lock_recovery_polling_interval=0.3)


def _runner(stack: Stack, host_id: str, schedule: str, runs: list[Any]) -> tuple[TimerRunner, TimerStore]:
    async def function(timer: Any) -> None:
        runs.append(timer)

    spec = FunctionSpec(
        "retry_parked", function, [{"type": "timerTrigger", "name": "timer", "schedule": schedule}]
    )
    store = TimerStore(BlobServiceClient.from_connection_string(stack.ports.connection_string()), host_id)
    return TimerRunner(spec, Worker(), store=store, singleton=FAST), store


async def test_two_instances_run_a_timer_once_and_the_other_takes_over_when_the_first_stops(
    stack: Stack,
) -> None:
    host_id = f"test-{uuid.uuid4().hex[:8]}"
    first_runs: list[Any] = []
    second_runs: list[Any] = []
    first, first_store = _runner(stack, host_id, "* * * * * *", first_runs)
    second, second_store = _runner(stack, host_id, "* * * * * *", second_runs)
    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    try:
        first_task = asyncio.create_task(first.run(first_stop))
        await asyncio.sleep(0.5)
        second_task = asyncio.create_task(second.run(second_stop))
        await asyncio.sleep(3)
        assert (len(first_runs) >= 2, second_runs, second.listening) == (True, [], False)
        first_stop.set()  # a stopping instance releases the lock
        await first_task
        held = len(first_runs)
        await asyncio.sleep(2.5)
        assert second.listening
        assert len(second_runs) >= 1
        assert len(first_runs) == held
    finally:
        first_stop.set()
        second_stop.set()
        await asyncio.gather(*(t for t in (first_task, second_task)), return_exceptions=True)
        await first_store.blobs.close()
        await second_store.blobs.close()


async def test_a_run_missed_while_no_instance_was_up_fires_once_when_one_starts(stack: Stack) -> None:
    """An hourly timer whose recorded Next is an hour ago (the app was down): one run at start-up with
    IsPastDue, then the schedule; the status blob records the run."""
    host_id = f"test-{uuid.uuid4().hex[:8]}"
    runs: list[Any] = []
    runner, store = _runner(stack, host_id, "0 0 * * * *", runs)
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    await store.record(
        runner.timer_name, ScheduleStatus(top - timedelta(hours=2), top - timedelta(hours=1), top)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.sleep(2)
    finally:
        stop.set()
        await task
    status = await store.status(runner.timer_name)
    await store.blobs.close()
    assert [timer.past_due for timer in runs] == [True]
    assert status is not None
    assert datetime.now(UTC) - status.last < timedelta(seconds=10)
    assert status.next == top + timedelta(hours=1)


async def test_a_new_timer_records_its_next_run_and_does_not_fire_at_start(stack: Stack) -> None:
    host_id = f"test-{uuid.uuid4().hex[:8]}"
    runs: list[Any] = []
    runner, store = _runner(stack, host_id, "0 0 * * * *", runs)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.sleep(1.5)
    finally:
        stop.set()
        await task
    status = await store.status(runner.timer_name)
    await store.blobs.close()
    assert runs == []
    assert status is not None
    assert status.last == NEVER
    assert status.next == datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
