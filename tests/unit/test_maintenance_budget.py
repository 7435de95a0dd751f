"""Maintenance stops at its time budget, well before functionTimeout, and resumes at its next run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.delivery.deadletters import DeadLetters
from shared.delivery.deadline import MAINTENANCE_BUDGET_SECONDS, Deadline
from shared.events.queue import EVENTS_QUEUE
from shared.state.models import DeadLetterRecord, LetterState
from tests.fakes import FakeQueue, MemoryStateStore

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


class Ticks:
    """A monotonic clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_deadline_expires_after_its_seconds() -> None:
    clock = Ticks(0.0)
    deadline = Deadline(10, clock)
    assert not deadline.expired()
    assert deadline.remaining() == 10
    clock.now = 9.5
    assert not deadline.expired()
    clock.now = 10
    assert deadline.expired()
    assert deadline.remaining() == 0


def test_the_budget_is_under_half_of_host_jsons_function_timeout() -> None:
    """The host cancels at functionTimeout and restarts the worker (every invocation on it dies)."""
    hours, minutes, seconds = json.loads((ROOT / "host.json").read_text())["functionTimeout"].split(":")
    timeout = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    assert timeout / 2 >= MAINTENANCE_BUDGET_SECONDS


def parked(n: int) -> DeadLetterRecord:
    return DeadLetterRecord(
        source="generic",
        event_id=f"e{n}",
        state=LetterState.PARKED,
        reason="learnerNotFound",
        detail="not yet",
        message=f"message {n}",
        attempts=1,
        first_failure=NOW - timedelta(hours=1),
        last_failure=NOW - timedelta(hours=1),
        next_attempt=NOW - timedelta(minutes=1),
    )


async def test_retrying_parked_events_stops_at_the_deadline_and_the_next_run_takes_the_rest() -> None:
    state, queue = MemoryStateStore(), FakeQueue()
    for n in range(5):
        await state.save_dead_letter(parked(n))
    letters = DeadLetters(state, queue, timedelta(hours=72), lambda: NOW)
    clock = Ticks(0.0)
    deadline = Deadline(2.5, clock)
    clock.step = 1.0  # each look at the deadline costs a second: two letters fit
    assert await letters.retry_due(deadline) == 2
    assert sorted(queue.sent[EVENTS_QUEUE]) == ["message 0", "message 1"]
    assert await letters.retry_due(Deadline(60)) == 3  # the next run: what was not reached is still due
    assert sorted(queue.sent[EVENTS_QUEUE]) == [f"message {n}" for n in range(5)]
    assert await letters.retry_due() == 0  # none due again yet
