"""Graph's documented answers to the learning API, classified (resources/learningcourseactivity-error-codes):
the wait a 429 or 503 names in minutes, a learner without a licence parked like an unknown learner,
and the tenant-wide refusals dead-lettered with what to fix, counted in `status`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from shared.delivery import EventWorker, TransientFailure
from shared.delivery.deadletters import PARKABLE, DeadLetters
from shared.delivery.exceptions import PermanentFailure
from shared.delivery.upsert import classify
from shared.events.model import CourseStatus
from shared.events.queue import EVENTS_QUEUE, QueuedEvent
from shared.graph.errors import GraphError, documented_reason, hinted_wait
from shared.state.models import DeadLetterRecord, LetterState
from tests.builders import USER_ID
from tests.cli_harness import Backends, fake_backends, run_cli, write_settings
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore
from tests.unit.test_event_worker import NOW, Clock, message
from tests.unit.test_graph_gateway import _write, gateway

# ---- the messages, as the error codes page spells them ------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "text", "reason"),
    [
        (403, "Forbidden", "The user license isn't valid to perform the operation", "learnerNotLicensed"),
        (403, "Forbidden", "The user license is not valid to perform the operation", "learnerNotLicensed"),
        (403, "User License isn't valid to perform the operation", "", "learnerNotLicensed"),  # Code column
        (403, "Forbidden", "You don't have an adequate service plan for this request.", "tenantNotLicensed"),
        (403, "Forbidden", "You don't have a service plan adequate for this request.", "tenantNotLicensed"),
        (
            403,
            "Forbidden",
            "You don\u2019t have an adequate service plan for this request.",
            "tenantNotLicensed",
        ),
        (400, "BadRequest", "This provider isn't enabled for the given tenant.", "providerNotEnabled"),
        (400, "Bad request", "This provider isn't enabled for the given tenant", "providerNotEnabled"),
        (
            403,
            "The provider isn't valid to create course activity for the given learning content",
            "",
            "contentOfAnotherProvider",
        ),
        (
            403,
            "Forbidden",
            "The provider is not valid to create course activity for the given learning content",
            "contentOfAnotherProvider",
        ),
        (
            400,
            "Bad request",
            "There was an issue with your request. Make sure the registrationId you entered is valid or "
            "registered for your tenant.",
            "providerNotRegistered",
        ),
        (
            400,
            "BadRequest",
            "There was an issue with your request. Make sure the registrationId you entered is valid or "
            "registered for your tenant",
            "providerNotRegistered",
        ),
        (
            403,
            "Forbidden",
            "Your account doesn't have access to this report or data. Please contact your global "
            "administrator to request access.",
            "appRoleMissing",
        ),
        (  # the get table's spelling
            403,
            "Forbidden",
            "Your account doesn't access to this report or data. Please contact your global administrator "
            "to request access.",
            "appRoleMissing",
        ),
        # Not these: another status, another message, a message that only contains the words.
        (400, "Forbidden", "The user license isn't valid to perform the operation", None),
        (403, "Forbidden", "This provider isn't enabled for the given tenant.", None),
        (403, "Forbidden", "Your account doesn't have access to this report or data.", None),
        (403, "Forbidden", "Not this: the user license isn't valid to perform the operation", None),
        (400, "UnknownError", "", None),
    ],
)
def test_documented_refusals_are_known_by_status_and_message(
    status: int, code: str, text: str, reason: str | None
) -> None:
    assert documented_reason(status, code, text) == reason
    assert GraphError(status, code, text).documented_reason == reason


@pytest.mark.parametrize(
    ("status", "text", "seconds"),
    [
        (429, "Retry after 2 minutes", 120),
        (503, "Retry after 1 minutes", 60),
        (429, "retry after 1 minute.", 60),
        (429, " Retry after 10 minutes ", 600),
        (429, "Please retry again later.", None),
        (429, "Retry after 2 hours", None),
        (400, "Retry after 2 minutes", None),  # only the throttled and unavailable answers name a wait
        (500, "Retry after 2 minutes", None),
        (429, "Retry after 2 minutes, or 3", None),
    ],
)
def test_the_wait_in_a_throttled_message_is_read_in_minutes(
    status: int, text: str, seconds: int | None
) -> None:
    assert hinted_wait(status, text) == seconds
    assert GraphError(status, "tooManyRequests", text).retry_after == seconds


def test_a_retry_after_header_wins_over_the_message() -> None:
    assert GraphError(429, "tooManyRequests", "Retry after 2 minutes", retry_after=7).retry_after == 7
    assert GraphError(429, "tooManyRequests", "Retry after 2 minutes", retry_after=0).retry_after == 0


@pytest.mark.parametrize(
    ("error", "kind", "reason", "retry_after"),
    [
        (
            GraphError(429, "tooManyRequests", "Retry after 2 minutes"),
            TransientFailure,
            "graphThrottled",
            120,
        ),
        (
            GraphError(503, "serviceUnavailable", "Retry after 3 minutes"),
            TransientFailure,
            "graphThrottled",
            180,
        ),
        (
            GraphError(503, "serviceUnavailable", "Retry after 3 minutes", 5),
            TransientFailure,
            "graphThrottled",
            5,
        ),
        (
            GraphError(403, "Forbidden", "The user license isn't valid to perform the operation"),
            PermanentFailure,
            "learnerNotLicensed",
            None,
        ),
        (
            GraphError(403, "Forbidden", "You don't have an adequate service plan for this request."),
            PermanentFailure,
            "tenantNotLicensed",
            None,
        ),
        (
            GraphError(400, "BadRequest", "This provider isn't enabled for the given tenant."),
            PermanentFailure,
            "providerNotEnabled",
            None,
        ),
        (
            GraphError(
                403,
                "Forbidden",
                "The provider isn't valid to create course activity for the given learning content",
            ),
            PermanentFailure,
            "contentOfAnotherProvider",
            None,
        ),
        (GraphError(403, "Forbidden", "Something else"), PermanentFailure, "graphForbidden", None),
        (
            GraphError(400, "BadRequest", "Input field status is invalid"),
            PermanentFailure,
            "graphRejected",
            None,
        ),
    ],
)
def test_graphs_answers_are_classified(
    error: GraphError, kind: type[Exception], reason: str, retry_after: float | None
) -> None:
    failure = classify(error)
    assert isinstance(failure, kind)
    assert failure.reason == reason
    assert failure.graph_error_code == error.code
    if isinstance(failure, TransientFailure):
        assert failure.retry_after == retry_after


def test_only_the_unlicensed_learner_is_parked_the_tenant_wide_refusals_are_not() -> None:
    assert "learnerNotLicensed" in PARKABLE
    tenant_wide = {
        "tenantNotLicensed",
        "providerNotEnabled",
        "contentOfAnotherProvider",
        "providerNotRegistered",
        "appRoleMissing",
    }
    assert not tenant_wide & PARKABLE


# ---- through msgraph-sdk: the answers as they come over HTTP ------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "seconds"),
    [
        (429, {"error": {"code": "tooManyRequests", "message": "Retry after 2 minutes"}}, {}, 120),
        (503, {"error": {"code": "serviceUnavailable", "message": "Retry after 1 minutes"}}, {}, 60),
        (
            429,
            {"error": {"code": "tooManyRequests", "message": "Retry after 2 minutes"}},
            {"Retry-After": "9"},
            9,
        ),
    ],
)
async def test_the_gateway_reads_the_wait_from_the_message_unless_a_header_names_one(
    status: int, body: dict[str, object], headers: dict[str, str], seconds: int
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    with pytest.raises(GraphError) as refused:
        await gateway(handler).create_activity("course-101", "learner", "content", _write())
    assert (refused.value.status, refused.value.retry_after) == (status, seconds)
    with pytest.raises(GraphError) as whole_batch:
        await gateway(handler).find_content_ids(["course-101"])
    assert whole_batch.value.retry_after == seconds


async def test_the_gateway_keeps_the_message_that_names_the_refusal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"code": "Forbidden", "message": "The user license isn't valid to perform the operation"}
        return httpx.Response(403, json={"error": error})

    with pytest.raises(GraphError) as refused:
        await gateway(handler).create_activity("course-101", "learner", "content", _write())
    assert refused.value.documented_reason == "learnerNotLicensed"


# ---- the worker: parked, dead-lettered, deferred -------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def letters(state: MemoryStateStore, queue: FakeQueue, clock: Clock) -> DeadLetters:
    return DeadLetters(state, queue, timedelta(hours=72), clock)


@pytest.fixture
def worker(
    graph: FakeGraph, state: MemoryStateStore, queue: FakeQueue, clock: Clock, letters: DeadLetters
) -> EventWorker:
    from shared.delivery import CourseActivityUpserter

    return EventWorker(CourseActivityUpserter(graph, state, clock=clock), letters, queue, clock)


async def test_an_unlicensed_learner_is_parked_then_applied_once_licensed(
    worker: EventWorker,
    graph: FakeGraph,
    state: MemoryStateStore,
    queue: FakeQueue,
    clock: Clock,
    letters: DeadLetters,
) -> None:
    graph.unlicensed.add(USER_ID)
    body = message(status="completed", completionPercentage=100)
    letter = await worker.process(body, 1)
    assert isinstance(letter, DeadLetterRecord)
    assert (letter.state, letter.reason, letter.graph_error_code) == (
        LetterState.PARKED,
        "learnerNotLicensed",
        "Forbidden",
    )
    assert letter.next_attempt == NOW + timedelta(minutes=5)
    assert USER_ID not in letter.detail
    assert "ada" not in letter.detail.casefold()
    assert "licence" in letter.detail
    graph.unlicensed.clear()
    clock.now = NOW + timedelta(minutes=6)
    assert await letters.retry_due() == 1  # the timer's run
    [again] = queue.sent[EVENTS_QUEUE]
    await worker.process(again, 1)
    assert state.letters == {}
    [record] = graph.activities.values()
    assert record.status is CourseStatus.COMPLETED


async def test_retry_parked_now_takes_parked_events_before_they_are_due_and_by_reason(
    worker: EventWorker, graph: FakeGraph, queue: FakeQueue, letters: DeadLetters
) -> None:
    graph.unlicensed.add(USER_ID)
    await worker.process(message(eventId="unlicensed"), 1)
    await worker.process(message(eventId="unknown", learner={"email": "nobody@contoso.example"}), 1)
    assert await letters.retry_due() == 0  # not due for five minutes
    assert await letters.retry_due(at_once=True, reason="learnerNotLicensed") == 1
    assert ['"unlicensed"' in m for m in queue.sent[EVENTS_QUEUE]] == [True]
    assert await letters.retry_due(at_once=True) == 2


@pytest.mark.parametrize(
    ("setup", "reason", "fix"),
    [
        (lambda g: setattr(g, "service_plan", False), "tenantNotLicensed", "plan"),
        (lambda g: setattr(g, "sync_enabled", False), "providerNotEnabled", "isCourseActivitySyncEnabled"),
        (lambda g: g.foreign_contents.add("content-101"), "contentOfAnotherProvider", "provider"),
        (
            lambda g: setattr(g, "provider_registered", False),
            "providerNotRegistered",
            "BRIDGE_PROVIDER_REGISTRATION_ID names no learning provider registered",
        ),
        (
            lambda g: g.errors["create_activity"].append(
                GraphError(
                    403,
                    "Forbidden",
                    "Your account doesn't have access to this report or data. Please contact your global "
                    "administrator to request access.",
                )
            ),
            "appRoleMissing",
            "LearningSelfInitiatedCourse.ReadWrite.All",
        ),
    ],
)
async def test_tenant_wide_refusals_are_dead_lettered_with_what_to_fix(
    worker: EventWorker, graph: FakeGraph, setup: object, reason: str, fix: str
) -> None:
    setup(graph)  # type: ignore[operator]
    letter = await worker.process(message(), 1)
    assert isinstance(letter, DeadLetterRecord)
    assert (letter.state, letter.reason) == (LetterState.DEADLETTERED, reason)
    assert fix in letter.detail
    assert f"replay --reason {reason}" in letter.detail
    assert USER_ID not in letter.detail
    assert "ada" not in letter.detail.casefold()


async def test_a_429_that_says_retry_after_2_minutes_defers_the_event_two_minutes(
    worker: EventWorker, graph: FakeGraph, queue: FakeQueue, state: MemoryStateStore
) -> None:
    graph.errors["create_activity"].append(GraphError(429, "tooManyRequests", "Retry after 2 minutes"))
    assert await worker.process(message(), 1) is None
    [(again, delay)] = queue.delayed[EVENTS_QUEUE]
    assert 120 <= delay <= 120 + 120 / 4  # the wait, plus its jitter (at most a quarter)
    assert QueuedEvent.model_validate_json(again).deferrals == 1
    assert state.letters == {}


# ---- status: counted by reason ------------------------------------------------------------------


def _letter(event_id: str, reason: str, *, parked: bool) -> DeadLetterRecord:
    """A letter of the generic source, as `status` counts it."""
    return DeadLetterRecord(
        source="generic",
        event_id=event_id,
        state=LetterState.PARKED if parked else LetterState.DEADLETTERED,
        reason=reason,
        detail="",
        message="{}",
        attempts=1,
        first_failure=NOW,
        last_failure=NOW,
    )


def test_status_counts_letters_by_reason_and_says_what_fixes_the_tenant_wide_ones(tmp_path: Path) -> None:
    fakes = Backends()
    for number, (reason, parked) in enumerate(
        [("learnerNotLicensed", True), ("learnerNotLicensed", True), ("providerNotEnabled", False)]
    ):
        fakes.store.letters[("generic", f"e{number}")] = _letter(f"e{number}", reason, parked=parked)
    with fake_backends(fakes):
        outcome = run_cli(["--settings", str(write_settings(tmp_path)), "status"])
    assert outcome.code == 0, outcome.err
    rows = {line.split()[0]: line.split()[1:] for line in outcome.out.splitlines() if line.strip()}
    assert rows["learnerNotLicensed"] == ["2", "0"]
    assert rows["providerNotEnabled"] == ["0", "1"]
    assert (
        "tenant-wide: providerNotEnabled: turn on the provider's isCourseActivitySyncEnabled" in outcome.out
    )
    assert "tenant-wide: learnerNotLicensed" not in outcome.out


def test_status_counts_an_unknown_registration_id_as_tenant_wide_with_its_fix(tmp_path: Path) -> None:
    fakes = Backends()
    fakes.store.letters[("generic", "e1")] = _letter("e1", "providerNotRegistered", parked=False)
    with fake_backends(fakes):
        outcome = run_cli(["--settings", str(write_settings(tmp_path)), "status"])
    assert outcome.code == 0, outcome.err
    rows = {line.split()[0]: line.split()[1:] for line in outcome.out.splitlines() if line.strip()}
    assert rows["providerNotRegistered"] == ["0", "1"]
    assert "tenant-wide: providerNotRegistered: set BRIDGE_PROVIDER_REGISTRATION_ID" in outcome.out
