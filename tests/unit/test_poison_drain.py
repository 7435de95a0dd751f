"""The poison queue drained into dead letters by a timer: every message the Functions host put there
(base64 copies of messages that failed, raw copies of ones that were not base64) becomes a dead letter
and leaves the queue; what cannot be recorded stays for the next run."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from shared.delivery import CourseActivityUpserter, EventWorker
from shared.delivery.deadletters import DeadLetters
from shared.delivery.deadline import Deadline
from shared.delivery.poison import MOVED, NOT_BASE64, PoisonDrain, decode_tolerantly
from shared.events.model import CanonicalEvent
from shared.events.names import POISON_QUEUE
from shared.events.queue import QueuedEvent
from shared.state.models import DeadLetterRecord, LetterState
from tests.builders import USER_ID, event
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def queued(event_id: str = "evt-1") -> str:
    model = QueuedEvent(
        event=CanonicalEvent.model_validate(event(source="generic", eventId=event_id)), received_at=NOW
    )
    return model.model_dump_json(by_alias=True, exclude_none=True)


def as_the_host_copies_it(body: str) -> str:
    """The host's poison copy of a message that failed: the decoded body, sent base64 again."""
    return base64.b64encode(body.encode()).decode()


class FlakyStore(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def save_dead_letter(self, record: DeadLetterRecord) -> None:
        if self.down:
            raise ConnectionError("table storage unreachable")
        await super().save_dead_letter(record)


@pytest.fixture
def state() -> FlakyStore:
    return FlakyStore()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def drain(state: FlakyStore, queue: FakeQueue) -> PoisonDrain:
    graph = FakeGraph()
    graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    graph.contents["course-101"] = "content-101"
    letters = DeadLetters(state, queue, timedelta(hours=72), lambda: NOW)
    worker = EventWorker(CourseActivityUpserter(graph, state), letters, queue, lambda: NOW)
    return PoisonDrain(worker, queue)


async def test_every_message_on_the_poison_queue_becomes_a_dead_letter_and_leaves_the_queue(
    drain: PoisonDrain, state: FlakyStore, queue: FakeQueue
) -> None:
    queue.put_raw(POISON_QUEUE, as_the_host_copies_it(queued("failed")))
    queue.put_raw(POISON_QUEUE, '{"not": "base64, so the host could not decode it"}')
    queue.put_raw(POISON_QUEUE, as_the_host_copies_it('{"version": 1}'))
    report = await drain.run(Deadline(60))
    assert (report.recorded, report.failed, report.stopped) == (3, 0, None)
    assert queue.stored[POISON_QUEUE] == []
    failed = state.letters[("generic", "failed")]
    assert (failed.state, failed.reason, failed.detail, failed.message) == (
        LetterState.DEADLETTERED,
        "poison",
        MOVED,
        queued("failed"),
    )
    assert state.deliveries_by_key[("generic", "failed")].status == "failed"  # a replay's success clears it
    unknown = {
        (letter.reason, letter.detail.split(". ", 1)[1], letter.message)
        for letter in state.letters.values()
        if letter.source == "unknown"
    }
    assert unknown == {
        ("invalidMessage", MOVED, '{"version": 1}'),
        ("invalidMessage", NOT_BASE64, '{"not": "base64, so the host could not decode it"}'),
    }


async def test_a_message_whose_dead_letter_cannot_be_written_stays_for_the_next_run(
    drain: PoisonDrain, state: FlakyStore, queue: FakeQueue
) -> None:
    for n in range(5):
        queue.put_raw(POISON_QUEUE, as_the_host_copies_it(queued(f"e{n}")))
    state.down = True
    report = await drain.run(Deadline(60))
    assert (report.recorded, report.failed, report.stopped) == (0, 3, "stateStoreUnavailable")
    assert len(queue.stored[POISON_QUEUE]) == 5
    assert state.letters == {}
    state.down = False
    queue.expire_leases()  # the receive lease ends before the next run
    report = await drain.run(Deadline(60))
    assert (report.recorded, report.stopped) == (5, None)
    assert queue.stored[POISON_QUEUE] == []
    assert len(state.letters) == 5


async def test_a_drain_stops_at_its_deadline_and_the_next_run_takes_the_rest(
    drain: PoisonDrain, state: FlakyStore, queue: FakeQueue
) -> None:
    for n in range(4):
        queue.put_raw(POISON_QUEUE, as_the_host_copies_it(queued(f"e{n}")))
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    report = await drain.run(Deadline(3.5, clock))  # a second each look: two messages fit
    assert (report.recorded, report.stopped) == (2, "deadline")
    queue.expire_leases()
    report = await drain.run(Deadline(60))
    assert (report.recorded, report.stopped) == (2, None)
    assert queue.stored[POISON_QUEUE] == []


async def test_an_unreadable_queue_stops_the_run(drain: PoisonDrain, queue: FakeQueue) -> None:
    queue.fail = True
    report = await drain.run(Deadline(60))
    assert (report.recorded, report.stopped) == (0, "queueUnavailable")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (base64.b64encode(b'{"a": 1}').decode(), ('{"a": 1}', True)),
        ("eyJh\r\nIjogMX0=", ('{"a": 1}', True)),  # .NET's decoder skips white space: so does this
        ('{"a": 1}', ('{"a": 1}', False)),
        (
            base64.b64encode(b"\xff\xfe not utf-8").decode(),
            (base64.b64encode(b"\xff\xfe not utf-8").decode(), False),
        ),
        ("", ("", True)),
    ],
)
def test_poison_messages_are_decoded_tolerantly(content: str, expected: tuple[str, bool]) -> None:
    assert decode_tolerantly(content) == expected
