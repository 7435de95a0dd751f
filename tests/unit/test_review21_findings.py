"""Review of issue 21 ("Nothing lost when Azure runs it"): defects found in the bridge under several
instances and the real host's rules. Each test fails on the code as reviewed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from shared.delivery import CourseActivityUpserter, EventWorker, UpsertResult
from shared.delivery.deadletters import DeadLetters
from shared.events.model import CanonicalEvent
from shared.events.names import EVENTS_QUEUE
from shared.events.queue import QueuedEvent
from shared.state.models import DeadLetterRecord, LetterState
from tests.builders import event
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
LATE_USER = "9b2e4c1a-7d3f-4e8a-b6c5-0a1b2c3d4e5f"


def statement(event_id: str, **overrides: object) -> str:
    model = QueuedEvent(
        event=CanonicalEvent.model_validate(event(source="generic", eventId=event_id, **overrides)),
        received_at=NOW,
    )
    return model.model_dump_json(by_alias=True, exclude_none=True)


class ListedThenChanged(MemoryStateStore):
    """A state store whose dead-letter listing hands out rows read before `meanwhile` ran: what a
    timer on one instance holds (a page of up to 1,000 rows, read at once, then worked through one
    by one) while a worker on another instance goes on."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], Awaitable[object]] | None = None

    async def dead_letters(self, *, brief: bool = False) -> AsyncIterator[DeadLetterRecord]:
        page = list(self.letters.values())
        if self.meanwhile is not None:
            hook, self.meanwhile = self.meanwhile, None
            await hook()
        for record in page:
            yield record


async def test_a_parked_event_applied_while_the_timer_works_through_its_page_leaves_no_letter() -> None:
    """A dead letter must stand for an event not applied yet (README "Failures", commit 594ed3b). But
    DeadLetters.retry_due writes each due letter back (`save_dead_letter(replace(letter,
    next_attempt=...))`, an unconditional upsert with no ETag) from the copy it listed. When the event
    is applied between the listing and that write (another copy of it, on another instance: the
    source redelivering once the learner exists, a replay, the CLI's `retry-parked` beside the timer,
    or the previous run's send deferred by a 429), the worker's success deletes the letter and the
    timer's write brings it back, parked. The copy the timer then sends is a redelivery of an applied
    event: acknowledged as a duplicate, which deletes no letter (`_applied` deletes only when the
    delivery row said `failed`). The letter stays parked for good: `status` and `deadletters list`
    show an event as waiting that Graph already has, and retry_parked re-sends it at the same interval
    every run forever (retry_due never raises `attempts`, and the park timeout is only checked when an
    attempt fails)."""
    graph, state, queue = FakeGraph(), ListedThenChanged(), FakeQueue()
    graph.contents["course-101"] = "content-101"
    letters = DeadLetters(state, queue, timedelta(hours=72), lambda: NOW)
    worker = EventWorker(CourseActivityUpserter(graph, state, clock=lambda: NOW), letters, queue, lambda: NOW)
    body = statement("late", learner={"email": "late@contoso.example"})
    parked = await worker.process(body, 1)
    assert isinstance(parked, DeadLetterRecord)
    assert parked.state is LetterState.PARKED

    graph.users_by_mail["late@contoso.example"] = LATE_USER  # the learner is provisioned
    state.meanwhile = lambda: worker.process(body, 1)  # another instance applies a copy of it
    later = NOW + timedelta(minutes=6)
    assert await DeadLetters(state, queue, clock=lambda: later).retry_due() == 1
    delivery = await state.delivery("generic", "late")
    assert delivery is not None
    assert delivery.status == "applied"

    [resent] = queue.sent[EVENTS_QUEUE][-1:]
    assert await worker.process(resent, 1) is UpsertResult.DEDUPLICATED
    assert state.letters == {}, (
        "a parked letter is left for an event Graph has: "
        f"{[(k, v.state.value) for k, v in state.letters.items()]}"
    )
