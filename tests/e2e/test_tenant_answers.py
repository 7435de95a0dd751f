"""Graph's documented answers to the learning API, end to end (dev host, Azurite, the sandbox through
msgraph-sdk): an unlicensed learner's completion parks and applies by itself once the licence is
granted, and a 429 whose message says "Retry after 2 minutes" holds the event back two minutes."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from azure.storage.queue import QueueClient

from shared.events.identity import derived_activity_id
from shared.events.queue import EVENTS_QUEUE, POISON_QUEUE
from shared.state.store import TableStateStore
from tests.builders import event
from tests.e2e.stack import Stack, cli, create_user, wait_for
from tests.e2e.test_graph_truth import (
    PROGRESS,
    new_course,
    send_statements,
    statement,
    unique,
    voiding,
)


def tenant(stack: Stack, **settings: object) -> None:
    httpx.post(f"{stack.sandbox}/_sandbox/tenant", json=settings, timeout=10).raise_for_status()


def unlicensed_learner(stack: Stack) -> tuple[str, str]:
    """A new user without a Viva Learning licence: (e-mail, object id)."""
    email = f"unlicensed-{uuid.uuid4().hex[:8]}@contoso.example"
    user_id = create_user(stack, email, "Unlicensed Learner")
    tenant(stack, licences={user_id: False})
    return email, user_id


def completion(email: str, course: str) -> dict[str, object]:
    return event(
        eventId=unique("licence"),
        learner={"email": email},
        course={"externalId": course},
        status="completed",
        completionPercentage=100,
    )


def test_an_unlicensed_learners_completion_parks_then_applies_by_itself_once_licensed(stack: Stack) -> None:
    email, user_id = unlicensed_learner(stack)
    sent = completion(email, new_course(stack))
    event_id = str(sent["eventId"])
    assert stack.send(sent).status_code == 202
    parked = wait_for(lambda: stack.dead_letter("generic", event_id), what="the parked completion")
    assert (parked.state.value, parked.reason, parked.graph_error_code) == (
        "parked",
        "learnerNotLicensed",
        "Forbidden",
    )
    assert email not in parked.detail
    assert user_id not in parked.detail
    assert stack.activity_of("generic", event_id) is None

    tenant(stack, licences={user_id: True})
    nothing_due = cli(stack, "retry-parked")  # what the timer runs every 5 minutes: not due yet
    assert nothing_due.returncode == 0, nothing_due.stderr
    assert stack.dead_letter("generic", event_id) is not None

    async def five_minutes_later(store: TableStateStore) -> None:
        letter = await store.dead_letter("generic", event_id)
        assert letter is not None
        assert letter.next_attempt is not None
        await store.save_dead_letter(replace(letter, next_attempt=datetime.now(UTC) - timedelta(seconds=1)))

    stack.with_state(five_minutes_later)
    # The timer's run, once the letter is due (the dev host's own timer, every 5 minutes, may take it
    # first: either way it goes back on the queue once).
    retried = cli(stack, "retry-parked")
    assert retried.returncode == 0, retried.stderr
    record = wait_for(
        lambda: stack.activity_of("generic", event_id), timeout=30, what="the completion in Graph"
    )
    assert (record["status"], record["completionPercentage"], record["learnerUserId"]) == (
        "completed",
        100,
        user_id,
    )
    wait_for(lambda: stack.dead_letter("generic", event_id) is None or None, what="the letter resolved")


def test_retry_parked_now_retries_unlicensed_learners_at_once(stack: Stack) -> None:
    email, user_id = unlicensed_learner(stack)
    sent = completion(email, new_course(stack))
    event_id = str(sent["eventId"])
    stack.send(sent)
    wait_for(lambda: stack.dead_letter("generic", event_id), what="the parked completion")
    status = cli(stack, "status")
    assert re.search(r"^learnerNotLicensed\s+[1-9]\d*\s+\d+$", status.stdout, re.MULTILINE), status.stdout
    listed = cli(stack, "deadletters", "list", "--reason", "learnerNotLicensed")
    assert f"generic:{event_id}" in listed.stdout
    tenant(stack, licences={user_id: True})
    retried = cli(stack, "retry-parked", "--now", "--reason", "learnerNotLicensed")
    assert retried.returncode == 0, retried.stderr
    wait_for(lambda: stack.activity_of("generic", event_id), timeout=30, what="the completion in Graph")


def test_a_429_that_says_retry_after_2_minutes_holds_the_event_back_two_minutes(stack: Stack) -> None:
    course = new_course(stack)
    # The stack is shared: the scripted 429 goes to the next POST, which must be this test's.
    wait_for(lambda: not stack.peek(EVENTS_QUEUE) or None, timeout=60, what="no other event waiting")
    earlier = _injected_post_429s(stack)  # the stack is the session's: count only this test's
    stack.faults(failNext=[{"status": 429, "retryAfterMinutes": 2, "method": "POST"}])
    event_id = unique("minutes")
    try:
        _held_back_two_minutes(stack, event_id, course, earlier)
    finally:
        with QueueClient.from_connection_string(stack.ports.connection_string(), EVENTS_QUEUE) as queue:
            queue.clear_messages()  # the test does not wait two minutes; later tests need an empty queue


def _injected_post_429s(stack: Stack) -> int:
    """The sandbox's count of 429s it injected into course activity POSTs (a counter: its request log
    keeps only the last 5,000 requests)."""
    stats = httpx.get(f"{stack.sandbox}/_sandbox/stats", timeout=10).json()
    return int(stats["injected"].get("POST activities 429", 0))


def _held_back_two_minutes(stack: Stack, event_id: str, course: str, earlier: int) -> None:
    stack.send(event(eventId=event_id, course={"externalId": course}))
    wait_for(lambda: _injected_post_429s(stack) > earlier or None, what="the throttled POST")
    assert _injected_post_429s(stack) == earlier + 1
    pattern = re.compile(
        rf"event deferred: event={re.escape(event_id)} source=generic reason=graphThrottled delay_s=(\d+)"
    )
    log = Path(stack.workdir / "devhost.log")
    found = wait_for(
        lambda: pattern.search(log.read_text(encoding="utf-8", errors="replace")), what="the deferral"
    )
    assert 120 <= int(found.group(1)) <= 150  # two minutes, plus at most a quarter of jitter
    time.sleep(1)
    assert stack.dead_letter("generic", event_id) is None
    assert stack.peek(POISON_QUEUE) == []
    assert stack.queue_depth(EVENTS_QUEUE) >= 1  # held back: invisible, not lost
    assert not [m for m in stack.peek(EVENTS_QUEUE) if event_id in m]


def test_trace_tells_the_story_of_a_record_created_updated_and_with_a_parked_event(stack: Stack) -> None:
    email, user_id = unlicensed_learner(stack)
    tenant(stack, licences={user_id: True})
    course = new_course(stack)
    first, second, third = unique("trace"), unique("trace"), unique("trace")
    stack.send(event(eventId=first, learner={"email": email}, course={"externalId": course}))
    wait_for(lambda: stack.activity_of("generic", first), what="the created record")
    stack.send(
        event(
            eventId=second, learner={"email": email}, course={"externalId": course}, completionPercentage=70
        )
    )
    wait_for(
        lambda: (stack.activity_of("generic", second) or {}).get("completionPercentage") == 70 or None,
        what="the updated record",
    )
    tenant(stack, licences={user_id: False})
    stack.send(
        event(
            eventId=third,
            learner={"email": email},
            course={"externalId": course},
            status="completed",
            completionPercentage=100,
        )
    )
    wait_for(lambda: stack.dead_letter("generic", third), what="the parked completion")

    told = cli(stack, "trace", "--learner", "email", email)
    assert told.returncode == 0, told.stderr
    out = told.stdout
    assert f"(course {course}, source generic)" in out
    assert out.index(f"generic:{first}") < out.index(f"generic:{second}") < out.index(f"generic:{third}")
    assert "last written to Graph: inProgress, 70%" in out
    assert "Graph has now: inProgress, 70%" in out
    assert "the events call for: inProgress, 70%" in out, out  # the parked event joins it once applied
    assert f"parked generic:{third} (learnerNotLicensed" in out
    assert "reached no course activity" not in out  # told with its activity (same learner, same course)
    assert "said completed, 100%" in out
    assert f"replay: python -m shared.cli replay generic:{third}" in out
    assert user_id not in out
    as_json = cli(stack, "trace", "--learner", "email", email, "--course", course, "--json")
    assert '"learnerNotLicensed"' in as_json.stdout
    tenant(stack, licences={user_id: True})


def test_trace_shows_each_graph_write_of_a_record_created_updated_voided_and_parked(stack: Stack) -> None:
    """The issue's story through xAPI (a source that voids): progressed (create), completed (patch), the
    completion voided (patch back), then, the licence gone, a new statement parked (patch refused)."""
    email, user_id = unlicensed_learner(stack)
    tenant(stack, licences={user_id: True})
    course = new_course(stack)
    progress, done, later = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())

    def said(verb: str, statement_id: str, **result: object) -> dict[str, object]:
        return {**statement(verb, course, statement_id, **result), "actor": {"mbox": f"mailto:{email}"}}

    def record() -> dict[str, object]:
        return stack.activity(derived_activity_id("lrs", user_id, course)) or {}

    send_statements(stack, [said("progressed", progress, extensions={PROGRESS: 40})])
    wait_for(lambda: record() or None, what="the created record")
    send_statements(stack, [said("completed", done, completion=True)])
    wait_for(lambda: record().get("status") == "completed" or None, what="the completed record")
    void = {**voiding(done), "actor": {"mbox": f"mailto:{email}"}}
    send_statements(stack, [void])
    wait_for(lambda: record().get("status") == "inProgress" or None, what="the completion voided")
    tenant(stack, licences={user_id: False})
    send_statements(stack, [said("progressed", later, extensions={PROGRESS: 60})])
    wait_for(lambda: stack.dead_letter("lrs", later), what="the parked statement")

    as_json = cli(stack, "trace", "--learner", "email", email, "--course", course, "--json")
    assert as_json.returncode == 0, as_json.stderr
    [story] = json.loads(as_json.stdout)["activities"]
    assert [(w["request"], w["status"], w["reason"], w["for"]) for w in story["graph_writes"]] == [
        ("create", 201, None, f"lrs:{progress}"),
        ("patch", 204, None, f"lrs:{done}"),
        ("patch", 204, None, f"lrs:{void['id']}"),
        ("patch", 403, "learnerNotLicensed", f"lrs:{later}"),
    ]
    received = {e["id"]: e["receivedAt"] for e in story["events"]}
    assert received[f"lrs:{progress}"] is not None  # when the webhook accepted it
    assert received[f"lrs:{done}"] is not None
    assert {e["learnerFoundBy"] for e in story["events"]} == {"email (mail)"}
    told = cli(stack, "trace", "--learner", "email", email)
    assert told.returncode == 0, told.stderr
    assert f"create Graph 201 ok for lrs:{progress}" in told.stdout
    assert f"patch  Graph 403 learnerNotLicensed for lrs:{later}" in told.stdout
    assert f"parked lrs:{later} (learnerNotLicensed" in told.stdout
    assert user_id not in told.stdout + as_json.stdout
    tenant(stack, licences={user_id: True})
