"""A signed webhook in, a learningSelfInitiatedCourse in the Graph sandbox out: every real piece
(HTTP, the dev host, Azurite queues, msgraph-sdk over HTTP, the sandbox's schema checks)."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

from shared.events.identity import explicit_activity_id
from shared.events.queue import EVENTS_QUEUE
from shared.state.models import DeliveryRecord
from tests.builders import USER_ID, dumps, event, signed_headers
from tests.e2e.stack import Stack, wait_for

ROOT = Path(__file__).resolve().parents[2]


_unseen = DeliveryRecord("", "", "", "", seen=0)


def unique() -> str:
    return f"it-{uuid.uuid4()}"


def in_graph(sender_id: str) -> str:
    """The Graph external id of the record the generic source names `sender_id` (namespaced)."""
    return explicit_activity_id("generic", sender_id)


def test_a_signed_webhook_becomes_a_self_initiated_course(stack: Stack) -> None:
    activity_id = unique()
    body = event(
        eventId=unique(),
        externalCourseActivityId=activity_id,
        status="completed",
        completionPercentage=None,
        startedAt="2026-11-02T09:15:00+01:00",
        completedAt="2026-11-20T14:03:00Z",
    )
    response = stack.send(body)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "eventIds": [body["eventId"]]}
    record = wait_for(lambda: stack.activity(in_graph(activity_id)), what="the course activity")
    assert record["@odata.type"] == "#microsoft.graph.learningSelfInitiatedCourse"
    assert record["learnerUserId"] == USER_ID  # resolved from the email through Graph users
    assert record["status"] == "completed"
    assert record["completionPercentage"] == 100
    assert record["startedDateTime"].startswith("2026-11-02T08:15:00")
    assert record["completedDateTime"].startswith("2026-11-20T14:03:00")


def test_a_redelivered_webhook_changes_nothing_and_costs_no_graph_call(stack: Stack) -> None:
    activity_id = unique()
    body = event(eventId=unique(), externalCourseActivityId=activity_id, completionPercentage=55)
    stack.send(body)
    first = wait_for(lambda: stack.activity(in_graph(activity_id)), what="the course activity")
    requests = stack.requests_for(in_graph(activity_id))
    assert stack.send(body).status_code == 202  # the platform redelivers, freshly signed
    wait_for(lambda: (stack.delivery("generic", body["eventId"]) or _unseen).seen == 2, what="the redelivery")
    assert stack.requests_for(in_graph(activity_id)) == requests  # not even a lookup
    assert stack.activity(in_graph(activity_id)) == first


def test_progress_arriving_after_completion_leaves_it_completed(stack: Stack) -> None:
    activity_id = unique()
    done = event(
        eventId=unique(),
        externalCourseActivityId=activity_id,
        status="completed",
        completionPercentage=None,
        startedAt="2026-11-01T00:00:00Z",
    )
    stack.send(done)
    wait_for(
        lambda: (stack.activity(in_graph(activity_id)) or {}).get("status") == "completed", what="completion"
    )
    late = event(
        eventId=unique(),
        externalCourseActivityId=activity_id,
        occurredAt="2026-11-19T10:00:00Z",
        completionPercentage=40,
    )
    stack.send(late)
    wait_for(lambda: stack.delivery("generic", late["eventId"]), what="the late event applied")
    record = stack.activity(in_graph(activity_id))
    assert record is not None
    assert (record["status"], record["completionPercentage"]) == ("completed", 100)


def test_a_bad_signature_is_401_and_reaches_neither_queue_nor_graph(stack: Stack) -> None:
    activity_id = unique()
    body = dumps(event(eventId=unique(), externalCourseActivityId=activity_id))
    headers = {**signed_headers(body), "webhook-signature": "v1,bm90LXRoZS1zaWduYXR1cmU="}
    response = stack.post(body, headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("authentication-failed")
    # Let a valid delivery go through and the queue drain: the refused one must have left no trace.
    follower = unique()
    stack.send(event(eventId=unique(), externalCourseActivityId=follower))
    wait_for(lambda: stack.activity(in_graph(follower)), what="the valid delivery")
    wait_for(lambda: stack.queue_depth(EVENTS_QUEUE) == 0 or None, what="an empty queue")
    assert stack.requests_for(in_graph(activity_id)) == []
    assert not any(activity_id in m for m in stack.peek(EVENTS_QUEUE))


def test_invalid_bodies_get_problem_details_naming_the_field(stack: Stack) -> None:
    response = stack.send([event(eventId=unique()), event(eventId=unique(), completionPercentage=140)])
    assert response.status_code == 400
    problem = response.json()
    assert problem["errors"][0]["pointer"] == "/1/completionPercentage"
    assert stack.post(b"x" * 10, {"content-type": "text/plain"}).status_code == 415
    assert (
        stack.send(
            event(),
        ).status_code
        == 202
    )
    assert stack.post(b"{}", signed_headers(b"{}"), source="unknown").status_code == 404


def test_an_unknown_learner_is_parked_with_its_reason(stack: Stack) -> None:
    event_id = unique()
    stack.send(event(eventId=event_id, learner={"email": "nobody@contoso.example"}))
    found = wait_for(lambda: stack.dead_letter("generic", event_id), what="the parked event")
    assert (found.state.value, found.reason) == ("parked", "learnerNotFound")
    assert "nobody" not in found.detail
    assert json.loads(found.message)["event"]["eventId"] == event_id


def test_a_throttled_lookup_is_retried_after_retry_after(stack: Stack) -> None:
    activity_id = unique()
    stack.faults(
        failNext=[
            {"status": 429, "retryAfterSeconds": 1, "method": "GET", "pathContains": in_graph(activity_id)}
        ]
    )
    stack.send(event(eventId=unique(), externalCourseActivityId=activity_id))
    wait_for(
        lambda: stack.activity(in_graph(activity_id)), timeout=30, what="the course activity after a 429"
    )
    injected = [r for r in stack.requests_for(in_graph(activity_id)) if r["injected"]]
    assert [r["status"] for r in injected] == [429]


def test_a_failed_create_is_retried_after_a_fresh_lookup_without_a_duplicate(stack: Stack) -> None:
    activity_id = unique()
    stack.faults(failNext=[{"status": 503, "retryAfterSeconds": 1, "method": "POST"}])
    stack.send(event(eventId=unique(), externalCourseActivityId=activity_id))
    wait_for(
        lambda: stack.activity(in_graph(activity_id)),
        timeout=60,
        what="the course activity after a 503 on POST",
    )
    posts = [r for r in stack.requests_for("/learningCourseActivities") if r["method"] == "POST"]
    assert any(r["status"] == 503 and r["injected"] for r in posts)
    lookups = [r for r in stack.requests_for(in_graph(activity_id)) if r["method"] == "GET"]
    assert len(lookups) >= 2  # the retry looked the record up again before creating it
    assert [a["externalcourseActivityId"] for a in stack.activities()].count(in_graph(activity_id)) == 1


def test_the_cli_sends_the_sample_and_waits_for_it_in_graph(stack: Stack) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "--settings",
            str(stack.settings_file),
            "send",
            "--source",
            "generic",
            "samples/generic/course-completed.json",
            "--url",
            stack.bridge,
            "--wait",
            "30",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "202 Accepted" in result.stdout
    assert "is in Graph after" in result.stdout
