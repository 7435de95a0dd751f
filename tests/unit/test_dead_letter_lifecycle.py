"""A dead letter stands for an event not applied yet, and for nothing else (issue 17's audit, second
look): a voiding that went through at last leaves no letter, and no timer or replay writes a letter
back after the event it stands for was applied."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from shared.delivery import CourseActivityUpserter, EventWorker, UpsertResult
from shared.delivery.deadletters import DeadLetters
from shared.events.model import CanonicalEvent
from shared.events.queue import QueuedEvent, Voiding
from shared.state.models import DeadLetterRecord, LetterState
from shared.storage.queues import QueueUnavailable
from tests.builders import event
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def statement(event_id: str, **overrides: object) -> str:
    model = QueuedEvent(
        event=CanonicalEvent.model_validate(event(source="generic", eventId=event_id, **overrides)),
        received_at=NOW,
    )
    return model.model_dump_json(by_alias=True, exclude_none=True)


def voiding(voided: str, voiding_id: str) -> str:
    void = Voiding(source="generic", voided_event_id=voided, voiding_event_id=voiding_id)
    return QueuedEvent(void=void, received_at=NOW).model_dump_json(by_alias=True, exclude_none=True)


class AppliedOnSend(FakeQueue):
    """A queue whose consumer is instant: the moment an event is sent, a worker applies it and its
    letter goes (what a success does), before the sender's next line runs."""

    def __init__(self, state: MemoryStateStore) -> None:
        super().__init__()
        self.state = state
        self.letters_at_send: list[DeadLetterRecord | None] = []

    def send_all(self, queue: str, messages: Sequence[str]) -> None:
        super().send_all(queue, messages)
        for body in messages:
            queued = QueuedEvent.model_validate_json(body)
            self.letters_at_send.append(self.state.letters.get((queued.source, queued.event_id)))
            self.state.letters.pop((queued.source, queued.event_id), None)


def worker_on(graph: FakeGraph, state: MemoryStateStore, queue: FakeQueue) -> EventWorker:
    letters = DeadLetters(state, queue, timedelta(hours=72), lambda: NOW)
    return EventWorker(CourseActivityUpserter(graph, state, clock=lambda: NOW), letters, queue, lambda: NOW)


@pytest.mark.voiding
async def test_a_voiding_dead_lettered_by_the_host_and_replayed_leaves_no_dead_letter(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    queue = FakeQueue()
    worker = worker_on(graph, state, queue)
    assert await worker.process(statement("done", status="completed", completionPercentage=100), 1) in (
        UpsertResult.CREATED,
    )
    body = voiding("done", "v1")
    letter = await worker.poisoned(body, "the host gave up on it")
    assert isinstance(letter, DeadLetterRecord)
    assert await DeadLetters(state, queue).replay(letter)
    assert await worker.process(body, 1) is UpsertResult.VOIDED
    assert state.letters == {}, "the voiding went through: its letter stands for nothing now"


async def test_a_parked_event_applied_the_moment_the_timer_sends_it_stays_resolved(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    queue = AppliedOnSend(state)
    worker = worker_on(graph, state, queue)
    await worker.process(statement("late", learner={"email": "late@contoso.example"}), 1)
    later = NOW + timedelta(minutes=6)
    assert await DeadLetters(state, queue, clock=lambda: later).retry_due() == 1
    [at_send] = queue.letters_at_send
    assert at_send is not None
    assert at_send.next_attempt is not None
    assert at_send.next_attempt > later
    assert state.letters == {}, "the letter was not written back after the event was applied"


async def test_a_replayed_letter_applied_the_moment_it_is_sent_stays_resolved(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    queue = AppliedOnSend(state)
    worker = worker_on(graph, state, queue)
    letter = await worker.poisoned(statement("e1"), "the host gave up on it")
    assert isinstance(letter, DeadLetterRecord)
    assert await DeadLetters(state, queue).replay(letter)
    [at_send] = queue.letters_at_send
    assert at_send is not None
    assert at_send.state is LetterState.REPLAYED
    assert state.letters == {}


async def test_a_replay_whose_send_fails_leaves_the_letter_replayable(
    graph: FakeGraph, state: MemoryStateStore
) -> None:
    queue = FakeQueue()
    worker = worker_on(graph, state, queue)
    letter = await worker.poisoned(statement("e1"), "the host gave up on it")
    assert isinstance(letter, DeadLetterRecord)
    queue.fail = True
    with pytest.raises(QueueUnavailable):
        await DeadLetters(state, queue).replay(letter)
    [kept] = state.letters.values()
    assert kept.state is LetterState.DEADLETTERED
    queue.fail = False
    assert await DeadLetters(state, queue).replay(kept)


@pytest.mark.parametrize("reason", ["learnerNotFound", "contentNotFound", "learnerNotLicensed"])
async def test_a_parked_letter_says_how_it_comes_back_and_a_given_up_one_says_replay(reason: str) -> None:
    """Whatever the parkable reason, a parked letter's detail says it comes back on the parking
    schedule (or with `retry-parked --now`), and once given up on, that `replay` brings it back
    (`retry-parked` takes parked letters only): one rule in DeadLetters, not a sentence some fixes
    carry and others do not."""
    from shared.delivery.exceptions import PermanentFailure

    clock = {"now": NOW}
    letters = DeadLetters(MemoryStateStore(), FakeQueue(), timedelta(hours=72), lambda: clock["now"])
    failure = PermanentFailure(reason, "Why it failed.")
    parked = await letters.record("generic", "e1", statement("e1"), failure)
    assert parked.state is LetterState.PARKED
    assert parked.detail.startswith("Why it failed. ")
    assert "retry-parked --now" in parked.detail
    clock["now"] = NOW + timedelta(hours=73)
    given_up = await letters.record("generic", "e1", statement("e1"), failure)
    assert given_up.state is LetterState.DEADLETTERED
    assert f"replay --reason {reason}" in given_up.detail
    assert "retry-parked" not in given_up.detail
    assert given_up.detail.count("Why it failed.") == 1
