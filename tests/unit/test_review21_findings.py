"""Review of issue 21 ("Nothing lost when Azure runs it"): defects found in the bridge under several
instances and the real host's rules. Each test fails on the code as reviewed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.delivery import CourseActivityUpserter, EventWorker, UpsertResult
from shared.delivery.deadletters import DeadLetters
from shared.events.model import CanonicalEvent
from shared.events.names import EVENTS_QUEUE
from shared.events.queue import QueuedEvent
from shared.graph.errors import GraphError
from shared.state.models import DeadLetterRecord, DeliveryRecord, LetterState
from tests.builders import event
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
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
    await DeadLetters(state, queue, clock=lambda: later).retry_due()
    delivery = await state.delivery("generic", "late")
    assert delivery is not None
    assert delivery.status == "applied"

    for resent in queue.sent[EVENTS_QUEUE]:  # a copy sent anyway is only a redelivery
        assert await worker.process(resent, 1) is UpsertResult.DEDUPLICATED
    assert state.letters == {}, (
        "a parked letter is left for an event Graph has: "
        f"{[(k, v.state.value) for k, v in state.letters.items()]}"
    )


async def test_a_reconcile_run_under_graph_throttling_ends_before_the_function_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 21 asks that maintenance be "bounded per invocation ... so the timeout never decides",
    and shared.functions.maintenance says the reconcile "works within the maintenance time budget"
    (120 s, under host.json's functionTimeout of 5 minutes, which the real host enforces by failing
    the invocation and restarting the worker: azure-webjobs-sdk FunctionExecutor, azure-functions-host
    WebScriptHostExceptionHandler.OnTimeoutExceptionAsync). But reconcile_report looks at its Deadline
    only between pages of 50 records; inside a page, shared.operations.batching.in_batches honours each
    throttled read's Retry-After (up to LONGEST_WAIT, 120 s) for up to THROTTLE_ATTEMPTS (5) tries,
    without any deadline. A Graph that throttles the page's reads with Retry-After 100 s four times
    keeps the run going about 400 s: the host kills it at 300 s, with the worker and every apply_event
    invocation on it, and because the checkpoint is written only when the run ends (record_run), the
    run's progress is lost and the next run starts the same page again.

    Time here is virtual: every sleep the run asks for moves the clock its Deadline and in_batches
    read, and returns at once."""
    from shared.delivery import deadline as deadline_module
    from shared.functions import maintenance
    from shared.operations import batching, reconcile
    from shared.operations.batching import THROTTLE_ATTEMPTS
    from tests.unit.test_reconcile import _a_pass_is_due, _timer_bridge, setup

    slept = [0.0]

    def clock() -> float:
        return time.monotonic() + slept[0]

    async def sleep(seconds: float) -> None:
        slept[0] += max(0.0, seconds)

    reconcile_defaults = reconcile.reconcile.__kwdefaults__
    batch_defaults = batching.in_batches.__kwdefaults__
    assert reconcile_defaults is not None
    assert batch_defaults is not None
    monkeypatch.setitem(reconcile_defaults, "sleep", sleep)
    monkeypatch.setitem(batch_defaults, "clock", clock)
    monkeypatch.setattr(batching.Pacer.__init__, "__defaults__", (sleep,))
    monkeypatch.setattr(
        deadline_module.Deadline,
        "maintenance",
        classmethod(lambda cls: cls(deadline_module.MAINTENANCE_BUDGET_SECONDS, clock)),
    )

    graph, state, _ = await setup()
    for record in graph.activities.values():  # every read is throttled, then answered
        graph.errors_for[("get_activity", record.external_id)].extend(
            GraphError(429, "TooManyRequests", "slow down", retry_after=100)
            for _ in range(THROTTLE_ATTEMPTS - 1)
        )
    bridge = _timer_bridge(state, graph, monkeypatch)
    _a_pass_is_due(state)
    started = clock()
    counts = await maintenance.reconcile_report(bridge)
    took = clock() - started
    # The run accounts for every record: read, or unread when Graph's wait would outlast the budget
    # (a line of the report, as any throttled read; the pass goes on instead of stalling on a page) ...
    assert counts["checked"] + counts["unread"] == 4
    assert took < function_timeout_seconds(), (
        f"... but one run took {took:.0f} s of host time: the host's functionTimeout "
        f"({function_timeout_seconds():.0f} s) would have killed it first"
    )


def function_timeout_seconds() -> float:
    hours, minutes, seconds = json.loads((ROOT / "host.json").read_text())["functionTimeout"].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


IMPORT_ENV = {
    "BRIDGE_SOURCES": '{"generic": {"format": "generic"}}',
    "BRIDGE_SOURCE_GENERIC_SECRET": "whsec_dGVzdC1vbmx5LXNlY3JldC1ieXRlcy0xMjM0NTY=",
    "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
    "BRIDGE_STORAGE": "UseDevelopmentStorage=true",
}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("BRIDGE_PARK_TIMEOUT_HOURS", "²"),  # str.isdigit() says yes, int() refuses it
        ("BRIDGE_CLAIM_LEASE_SECONDS", "9" * 5000),  # past Python's 4,300-digit int() limit
        ("BRIDGE_SOURCES", "[" * 100_000),  # json.loads: RecursionError, not JSONDecodeError
        ("BRIDGE_SOURCES", '{"generic": {"format": "generic", "n": 1' + "0" * 5000 + "}}"),  # ValueError
    ],
    ids=["superscript-digit", "5000-digit-number", "deeply-nested-sources", "5000-digit-json-number"],
)
def test_importing_the_app_never_raises_whatever_a_setting_holds(setting: str, value: str) -> None:
    """function_app's docstring and issue 21: "Importing this module never raises: an exception while
    the worker indexes the app would leave the host running with no function at all" (azure-functions-
    python-worker dispatcher.py `_handle__functions_metadata_request`; azure-functions-host
    GrpcWorkerChannel "Worker failed to index functions"): every route 404, the queue and timers
    idle, the deployment reported as a success. LazyBridge.from_environment turns only
    ConfigurationError into the 503 problem; load_settings lets other exceptions out:
    `_positive_int` checks `raw.isdigit()` (true for '²' and for 5,000 digits) and then `int(raw)`
    raises ValueError; `read_sources` catches only json.JSONDecodeError, so a RecursionError or the
    int-digits ValueError of json.loads escapes. (The CLI was made to survive the same JSON in commit
    ea9c719; the app's own import was not.) Expected: the app imports, and the setting is named as
    the problem, as for any other invalid value (an unusable BRIDGE_SOURCES is reported as the
    sources' problem, as an invalid JSON there always was: the app runs, each source refuses)."""
    env = {**IMPORT_ENV, setting: value}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    code = (
        "import function_app\n"
        "problem = function_app.bridge.problem\n"
        "print('PROBLEM', ' '.join(problem.problems) if problem else '-')\n"
        "settings = function_app.bridge.settings\n"
        "print('SOURCES', settings.sources_problem if settings else '-')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"importing function_app raised: {result.stderr.strip().splitlines()[-1]}"
    assert setting in result.stdout


class ReadThenChanged(MemoryStateStore):
    """A state store where one read of a delivery row answers what it held, but `meanwhile` runs (on
    another instance) before the reader's next request: the read-then-write window of `mark`."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], Awaitable[object]] | None = None
        self.armed = False

    async def delivery(self, source: str, event_id: str) -> DeliveryRecord | None:
        found = await super().delivery(source, event_id)
        if self.armed and self.meanwhile is not None:
            hook, self.meanwhile = self.meanwhile, None
            await hook()
        return found


async def test_a_last_attempt_racing_a_copy_applied_elsewhere_leaves_no_dead_letter() -> None:
    """Commit 594ed3b: "A copy of an event applied already is never parked or dead-lettered ... a dead
    letter stands for an event not applied yet". EventWorker._record checks that with
    CourseActivityUpserter.mark, which reads the delivery row and then writes it back as `failed`
    (an unconditional save_delivery, no ETag). With several instances, two copies of one event (a
    source's redelivery; the webhook queues each delivery) run side by side: when copy B is applied
    on another instance between copy A's read and write, A's last attempt (dequeue count 5,
    retriesExhausted) overwrites B's `applied` row with `failed` and writes a dead letter for an event
    Graph has. The operator is told an event was lost (and alerted), and the delivery row no longer
    says the event was applied."""
    graph, state, queue = FakeGraph(), ReadThenChanged(), FakeQueue()
    graph.users_by_mail["ada.lovelace@contoso.example"] = "4a1f3c2e-8b7d-4e6a-9f05-1c2d3e4f5a6b"
    graph.contents["course-101"] = "content-101"
    letters = DeadLetters(state, queue, timedelta(hours=72), lambda: NOW)
    worker = EventWorker(CourseActivityUpserter(graph, state, clock=lambda: NOW), letters, queue, lambda: NOW)
    body = statement("twice")
    # Copy A has spent its backoffs (Graph kept failing it), so its fifth delivery is its last.
    exhausted = QueuedEvent.model_validate_json(body).model_copy(update={"failures": 16})
    copy_a = exhausted.model_dump_json(by_alias=True, exclude_none=True)
    graph.errors["find_user_id_by:mail"].append(GraphError(503, "ServiceUnavailable", "down"))

    async def copy_b_applied_elsewhere() -> None:
        graph.errors.clear()
        assert await worker.process(body, 1) is UpsertResult.CREATED

    state.meanwhile = copy_b_applied_elsewhere

    original_mark = worker._upserter.mark

    async def mark(source: str, event_id: str, status: str) -> bool:
        state.armed = True  # the race is inside mark's read-then-write
        try:
            return await original_mark(source, event_id, status)
        finally:
            state.armed = False

    worker._upserter.mark = mark  # type: ignore[method-assign]
    outcome = await worker.process(copy_a, 5)
    delivery = await state.delivery("generic", "twice")
    assert delivery is not None
    assert (outcome, delivery.status, state.letters) == (UpsertResult.DEDUPLICATED, "applied", {}), (
        f"copy A ended as {outcome!r}, the delivery row says {delivery.status!r}, letters: "
        f"{[(k, v.reason) for k, v in state.letters.items()]}"
    )
