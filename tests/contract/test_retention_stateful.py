"""The whole of retention against the real Table store on Azurite, as a hypothesis state machine.

The fold's algebra is property-tested elsewhere (tests/unit/test_retention.py); this proves the storage
steps that carry it out. Steps interleave, in any order: events from a source that cannot void (the lean
path) and from one that can (xAPI), redeliveries, voidings (also before the statement they void), events
parked because their course is not in Viva Learning yet, the course's registration and the retry of
parked events, assignment statements (a course assigned, required or recommended, with a due date; its
due date moved by a newer statement; the assignment withdrawn: issue 18), and `compact --days 0`
(apply_retention, as the daily timer runs it), also interrupted between two of its transactions. The
activity row holds at most three entries here, and a fold transaction deletes at most two rows, so spills
and multi-step folds happen all the time.

Invariants, after every step:
- the Graph record of every activity whose events have all been applied (none parked) is the fold of
  every accepted event, voided ones left out, field for field (merge.RECORD_FIELDS: progress, and an
  assignment's type, assigned and due dates and notes; a withdrawn assignment is no assignment); an
  activity whose course is unknown has no record;
- what the state store keeps of every activity's log folds as its events do (so the next write, built
  on it, is right too), also at once after a compaction;
- dead letters exist exactly for the events that are parked (accepted, not applied yet);
- retention's documented exception: an event older than the period is history, and its voiding
  withdraws nothing (README "Bounded state"): here, an event that compaction folded into a baseline, or
  whose delivery row (what names its activity) retention removed and no redelivery wrote again.

Sizes: `make test` runs a few examples; the documented big run (README) sets
RETENTION_STATEFUL_EXAMPLES and RETENTION_STATEFUL_STEPS.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from devtools.localstack.processes import AzuritePorts, azurite, free_port
from shared.delivery.deadletters import DeadLetters
from shared.delivery.merge import RECORD_FIELDS, contribution, fold
from shared.delivery.upsert import CourseActivityUpserter
from shared.delivery.worker import EventWorker
from shared.events.identity import activity_id_for
from shared.events.model import CanonicalEvent
from shared.events.queue import EVENTS_QUEUE, QueuedEvent, Voiding
from shared.operations import retention
from shared.operations.retention import apply_retention
from shared.state import store as table_store
from shared.state.models import LetterState
from shared.state.store import ACTIVITIES, DEADLETTERS, DELIVERIES, TableStateStore
from tests.builders import USER_ID
from tests.fakes import FakeGraph, FakeQueue

EXAMPLES = int(os.environ.get("RETENTION_STATEFUL_EXAMPLES", "15"))
STEPS = int(os.environ.get("RETENTION_STATEFUL_STEPS", "40"))
#: `make test` replays the same examples every time; a big run (either variable set) draws new ones.
RANDOM = "RETENTION_STATEFUL_EXAMPLES" in os.environ or "RETENTION_STATEFUL_STEPS" in os.environ
#: Steps taken and what they exercised, over the whole run (printed at the end: `pytest -s`).
TALLY: Counter[str] = Counter()
EMAIL = "ada.lovelace@contoso.example"
LEAN, VOIDING = "generic", "lrs"
#: Courses: two known to Viva Learning, one that is registered only by the `register` step.
KNOWN, LATE = ("course-a", "course-b"), "course-late"
BASE = datetime(2026, 1, 1, tzinfo=UTC)


_EVENTS = st.tuples(
    st.sampled_from([LEAN, VOIDING]),
    st.sampled_from([*KNOWN, LATE]),
    st.sampled_from(["inProgress", "inProgress", "completed", "notStarted"]),
    st.integers(0, 100),
    st.integers(0, 60),
)


#: An assignment statement: source, course, type (or "withdrawn"), the day it is made, the due date's
#: day (a withdrawal has none), and the progress the same event reports (or none).
_ASSIGNMENTS = st.tuples(
    st.sampled_from([LEAN, VOIDING]),
    st.sampled_from([*KNOWN, LATE]),
    st.sampled_from(["required", "required", "recommended", "withdrawn"]),
    st.integers(0, 60),
    st.integers(61, 120),
    st.sampled_from(["notStarted", "inProgress", "completed"]),
)


class Interrupted(Exception):
    """The retention run died between two of its transactions (a timeout, a worker restart)."""


@dataclass
class Sent:
    """One event as the model knows it."""

    event: CanonicalEvent
    parked: bool = False  # its last processing parked it
    voided: bool = False  # a voiding that counts (not of history) reached the bridge
    void_seen: bool = False  # a voiding reached the bridge, counting or not: the event asks for nothing
    folded: bool = False  # compaction folded it into a baseline before any voiding counted

    @property
    def activity(self) -> str:
        return activity_id_for(self.event, USER_ID, False)


@dataclass
class Model:
    sent: dict[str, Sent] = field(default_factory=dict)
    #: Voidings that reached the bridge before their statement: statement id -> voiding id.
    early_voidings: dict[str, str] = field(default_factory=dict)
    registered: set[str] = field(default_factory=lambda: set(KNOWN))


@pytest.fixture(scope="module")
def own_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuritePorts]:
    """An Azurite of this test's own: each example starts from empty tables."""
    ports = AzuritePorts(free_port(), free_port(), free_port())
    log = Path(tmp_path_factory.mktemp("azurite-stateful")) / "azurite.log"
    service = azurite(ports, location=None, log_path=log).start()
    try:
        service.wait_ready(ports.queue)
        yield ports
    finally:
        service.stop()


def test_retention_never_rewrites_history_whatever_the_order_of_steps(
    own_azurite: AzuritePorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(table_store, "HELD_ENTRIES", 3)
    monkeypatch.setattr(table_store, "FOLD_CHUNK", 2)
    connection = own_azurite.connection_string()

    class Machine(RetentionMachine):
        def __init__(self) -> None:
            super().__init__(connection)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=not RANDOM,
        ),
    )
    print("retention state machine:", ", ".join(f"{k}={v}" for k, v in sorted(TALLY.items())))


class RetentionMachine(RuleBasedStateMachine):
    def __init__(self, connection: str) -> None:
        super().__init__()
        from azure.data.tables.aio import TableServiceClient

        self.loop = asyncio.new_event_loop()
        self.store = TableStateStore(TableServiceClient.from_connection_string(connection))
        self._run(self._empty_tables(connection))
        self.graph = FakeGraph()
        self.graph.users_by_mail[EMAIL] = USER_ID
        for course in KNOWN:
            self.graph.contents[course] = f"content-{course}"
        self.queue = FakeQueue()
        self.clock = _Clock()
        self.letters = DeadLetters(self.store, self.queue, timedelta(days=3650), self.clock)
        upserter = CourseActivityUpserter(self.graph, self.store, voiding_sources={VOIDING})
        self.worker = EventWorker(upserter, self.letters, self.queue)
        self.model = Model()
        self.counter = 0

    def _run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    @staticmethod
    async def _empty_tables(connection: str) -> None:
        from azure.data.tables.aio import TableServiceClient

        async with TableServiceClient.from_connection_string(connection) as service:
            for name in (DELIVERIES, ACTIVITIES, DEADLETTERS):
                await service.delete_table(name)

    def teardown(self) -> None:
        self._run(self.store.close())
        self.loop.close()

    # steps ------------------------------------------------------------------------------------------

    @rule(events=st.lists(_EVENTS, min_size=1, max_size=6))
    def send(self, events: list[tuple[str, str, str, int, int]]) -> None:
        """New events, one message each (a delivery of several, or a busy platform)."""
        for source, course, status, percentage, day in events:
            self._send_one(source, course, status, percentage, day)

    @rule(statements=st.lists(_ASSIGNMENTS, min_size=1, max_size=3))
    def assign(self, statements: list[tuple[str, str, str, int, int, str]]) -> None:
        """Assignment statements (or withdrawals), each the whole assignment as it stands that day,
        some with the learner's progress in the same event."""
        for source, course, kind, day, due_day, status in statements:
            self._send_assignment(source, course, kind, day, due_day, status)

    @precondition(lambda self: self._assigned())
    @rule(data=st.data(), later=st.integers(1, 30), due_day=st.integers(61, 150))
    def move_the_due_date(self, data: st.DataObject, later: int, due_day: int) -> None:
        """A newer statement of an assignment made before: same type, another due date."""
        sent = self.model.sent[data.draw(st.sampled_from(self._assigned()))]
        assignment = sent.event.assignment
        assert assignment is not None
        assert assignment.type is not None
        day = (sent.event.occurred_at - BASE).days + later
        self._send_assignment(sent.event.source, sent.event.course.external_id, assignment.type, day, due_day)
        TALLY["due dates moved"] += 1

    @precondition(lambda self: self._assigned())
    @rule(data=st.data(), later=st.integers(0, 30))
    def withdraw(self, data: st.DataObject, later: int) -> None:
        """The withdrawal of an assignment made before (or, drawn `later` 0, made the same day)."""
        sent = self.model.sent[data.draw(st.sampled_from(self._assigned()))]
        day = (sent.event.occurred_at - BASE).days + later
        self._send_assignment(sent.event.source, sent.event.course.external_id, "withdrawn", day, 0)

    def _assigned(self) -> list[str]:
        return sorted(
            k
            for k, s in self.model.sent.items()
            if s.event.assignment is not None and not s.event.assignment.withdrawn
        )

    def _send_assignment(
        self, source: str, course: str, kind: str, day: int, due_day: int, status: str = "notStarted"
    ) -> None:
        if kind == "withdrawn":
            assignment: dict[str, Any] = {"withdrawn": True}
        else:
            due = BASE + timedelta(days=due_day, hours=17)
            assignment = {"type": kind, "dueAt": due.isoformat(), "notes": f"due on day {due_day}"}
        TALLY["withdrawals" if kind == "withdrawn" else f"assignments ({kind})"] += 1
        self._send_one(source, course, status, 30 + due_day % 50, day, assignment)

    def _send_one(
        self,
        source: str,
        course: str,
        status: str,
        percentage: int,
        day: int,
        assignment: dict[str, Any] | None = None,
    ) -> None:
        self.counter += 1
        event_id = str(uuid.UUID(int=self.counter)) if source == VOIDING else f"evt-{self.counter}"
        body: dict[str, Any] = {
            "source": source,
            "eventId": event_id,
            "occurredAt": (BASE + timedelta(days=day, hours=self.counter % 24)).isoformat(),
            "learner": {"email": EMAIL},
            "course": {"externalId": course},
            "status": status,
        }
        if status == "inProgress":
            body["completionPercentage"] = percentage
        if assignment is not None:
            body["assignment"] = assignment
        sent = Sent(CanonicalEvent.model_validate(body))
        self.model.sent[event_id] = sent
        self._deliver(sent)

    @precondition(lambda self: self.model.sent)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        sent = self.model.sent[data.draw(st.sampled_from(sorted(self.model.sent)))]
        self._deliver(sent)

    @precondition(lambda self: any(s.event.source == VOIDING for s in self.model.sent.values()))
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        voidable = sorted(k for k, s in self.model.sent.items() if s.event.source == VOIDING)
        sent = self.model.sent[data.draw(st.sampled_from(voidable))]
        counts = not sent.folded and self._known(sent)
        self._process(_voiding(sent.event.event_id))
        sent.void_seen = True
        TALLY["voidings that count" if counts else "voidings of history"] += 1
        if counts:  # a parked one keeps its dead letter until its retry finds it voided
            sent.voided = True

    @rule()
    def void_before_the_statement_comes(self) -> None:
        """A voiding of the statement the next `send` of the xAPI source will carry (if it does)."""
        target = str(uuid.UUID(int=self.counter + 1))
        if target in self.model.early_voidings:
            return
        self._process(_voiding(target))
        self.model.early_voidings[target] = "void"

    @precondition(lambda self: LATE not in self.model.registered)
    @rule()
    def register_the_late_course(self) -> None:
        self.graph.contents[LATE] = f"content-{LATE}"
        self.model.registered.add(LATE)

    @rule()
    def retry_parked(self) -> None:
        self.clock.now += timedelta(days=1)
        self._run(self.letters.retry_due())
        messages, self.queue.sent[EVENTS_QUEUE] = self.queue.sent[EVENTS_QUEUE], []
        for message in messages:
            event = QueuedEvent.model_validate_json(message).event
            assert event is not None
            self._deliver(self.model.sent[event.event_id], message)

    @rule(interrupt_after=st.none() | st.integers(1, 3))
    def compact(self, interrupt_after: int | None) -> None:
        calls = 0
        combine = retention._combined

        def interrupting(entries: Any) -> Any:
            nonlocal calls
            calls += 1
            if interrupt_after is not None and calls > interrupt_after:
                raise Interrupted
            return combine(entries)

        retention._combined = interrupting
        try:
            self._run(apply_retention(self.store, datetime.now(UTC) + timedelta(seconds=1), 0))
        except Interrupted:
            TALLY["compactions interrupted after a transaction"] += calls > 1
        finally:
            retention._combined = combine
        TALLY["compactions"] += 1
        TALLY["compactions that folded"] += calls > 0
        TALLY["fold transactions"] += min(calls, interrupt_after or calls)
        self._mark_history()

    # what the bridge and the model do ----------------------------------------------------------------

    def _deliver(self, sent: Sent, message: str | None = None) -> None:
        body = message or QueuedEvent(event=sent.event, received_at=datetime.now(UTC)).model_dump_json(
            by_alias=True, exclude_none=True
        )
        row = self._run(self.store.delivery(sent.event.source, sent.event.event_id))
        applied_before = row is not None and row.status == "applied"  # until retention removes the row
        self._process(body)
        event_id = sent.event.event_id
        voided_early = sent.event.source == VOIDING and event_id in self.model.early_voidings
        if voided_early:
            sent.void_seen = True
            sent.voided = sent.voided or not sent.folded
        course = sent.event.course.external_id
        # Parked when the activity's events call for a record whose course Viva Learning lacks ("not
        # started" alone calls for none: no course is looked up).
        live = [
            contribution(s.event)
            for s in self.model.sent.values()
            if s.activity == sent.activity and not s.voided
        ]
        sent.parked = (
            not sent.void_seen  # a voided event is acknowledged, even one of history
            and not applied_before  # a redelivery of an applied event is acknowledged as a duplicate
            and course not in self.model.registered
            and fold(live) is not None
        )

    def _process(self, body: str) -> None:
        TALLY["steps that process a message"] += 1
        result = self._run(self.worker.process(body, 1))
        assert result is not None, "nothing here waits (no throttling): every message has an outcome"

    def _mark_history(self) -> None:
        """Events whose entries a compaction folded away: a later voiding of them withdraws nothing
        (the baseline holds them), even when a redelivery logs them again."""
        for activity in {s.activity for s in self.model.sent.values()}:
            logged = {e.event_id for e in self._run(self.store.events(activity))}
            for sent in self.model.sent.values():
                if sent.activity == activity and not sent.voided and sent.event.event_id not in logged:
                    sent.folded = True

    def _known(self, sent: Sent) -> bool:
        """Whether the bridge still knows which activity the event went to: its delivery row, which
        retention removes past the period (then the event is history, and its voiding withdraws
        nothing), until a redelivery writes it again."""
        row = self._run(self.store.delivery(sent.event.source, sent.event.event_id))
        return row is not None and bool(row.activity_id)

    # invariants ---------------------------------------------------------------------------------------

    @invariant()
    def every_settled_record_is_the_fold_of_its_events(self) -> None:
        TALLY["invariant checks (after each step, and at each start)"] += 1
        by_activity: dict[str, list[Sent]] = {}
        for sent in self.model.sent.values():
            by_activity.setdefault(sent.activity, []).append(sent)
        for activity, events in by_activity.items():
            record = self.graph.activities.get(activity)
            course = events[0].event.course.external_id
            if course not in self.model.registered:
                assert record is None
                continue
            if any(s.parked for s in events):
                continue  # its record waits for the retry of a parked event
            expected = fold(contribution(s.event) for s in events if not s.voided)
            written = None if record is None else {name: getattr(record, name) for name in RECORD_FIELDS}
            wanted = None if expected is None else {name: getattr(expected, name) for name in RECORD_FIELDS}
            assert written == wanted, f"activity {activity}: Graph holds {written}, the events say {wanted}"
            if record is not None and record.assignment_type is not None:
                TALLY["assignment records checked"] += 1

    @invariant()
    def every_log_folds_as_its_events(self) -> None:
        """What the state store keeps of each activity (baselines, entries, voidings) folds as the
        events do, at once after a compaction: the next event's write would be built on it."""
        by_activity: dict[str, list[Sent]] = {}
        for sent in self.model.sent.values():
            by_activity.setdefault(sent.activity, []).append(sent)
        for activity, events in by_activity.items():
            expected = fold(contribution(s.event) for s in events if not s.voided)
            kept = fold(self._run(self.store.events(activity)))
            wanted = None if expected is None else {name: getattr(expected, name) for name in RECORD_FIELDS}
            logged = None if kept is None else {name: getattr(kept, name) for name in RECORD_FIELDS}
            assert logged == wanted, f"activity {activity}: the log folds to {logged}, the events to {wanted}"

    @invariant()
    def dead_letters_exist_exactly_for_parked_events(self) -> None:
        async def letters() -> set[str]:
            return {
                letter.event_id
                async for letter in self.store.dead_letters(brief=True)
                if letter.state is not LetterState.REPLAYED
            }

        parked = {k for k, s in self.model.sent.items() if s.parked}
        assert self._run(letters()) == parked


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _voiding(target: str) -> str:
    voiding_id = str(uuid.uuid4())
    return QueuedEvent(
        void=Voiding(source=VOIDING, voided_event_id=target, voiding_event_id=voiding_id),
        received_at=datetime.now(UTC),
    ).model_dump_json(by_alias=True, exclude_none=True)
