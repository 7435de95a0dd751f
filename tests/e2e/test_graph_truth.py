"""What the bridge actually writes to Graph, seen from the sandbox (which enforces Graph's documented
rules and logs each request's body), through the dev host, Azurite and msgraph-sdk."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from azure.storage.queue import QueueClient

from shared.events.identity import ActivityOwner, derived_activity_id
from shared.events.queue import EVENTS_QUEUE, POISON_QUEUE
from shared.state.store import TableStateStore
from tests.builders import USER_ID, event
from tests.e2e.stack import CLAIM_LEASE_SECONDS, PARTNER_SECRET, PROVIDER_ID, Stack, wait_for

SELF_INITIATED = "#microsoft.graph.learningSelfInitiatedCourse"
LRS_AUTH = "Basic " + base64.b64encode(b"lrs-key:lrs-secret").decode()


def unique(prefix: str = "truth") -> str:
    return f"{prefix}-{uuid.uuid4()}"


def new_course(stack: Stack, course: str | None = None) -> str:
    """A course registered in Viva Learning for this test alone (PATCH learningContents creates it)."""
    course = course or unique("course")
    url = f"{stack.sandbox}/v1.0/employeeExperience/learningProviders/{PROVIDER_ID}/learningContents"
    content = {
        "title": course,
        "contentWebUrl": f"https://lms.contoso.example/{course}",
        "languageTag": "en-us",
    }
    response = httpx.patch(
        f"{url}(externalId='{course}')", json=content, headers={"x-sandbox-client": "test"}, timeout=10
    )
    response.raise_for_status()
    return course


def statement(verb: str, course: str, statement_id: str, **result: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": statement_id,
        "actor": {"mbox": "mailto:ada.lovelace@contoso.example"},
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}"},
        "object": {"id": f"https://lms.contoso.example/courses/{course}"},
        "timestamp": "2026-11-21T09:00:00Z",
    }
    if result:
        body["result"] = result
    return body


def voiding(target: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": "mailto:ada.lovelace@contoso.example"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": target},
    }


def send_statements(stack: Stack, statements: list[dict[str, Any]]) -> None:
    headers = {
        "content-type": "application/json",
        "authorization": LRS_AUTH,
        "x-experience-api-version": "1.0.3",
    }
    response = stack.post(json.dumps(statements).encode(), headers, path="xapi/lrs/statements")
    assert response.status_code == 200, response.text


def lrs_record(stack: Stack, course: str) -> dict[str, Any] | None:
    return stack.activity(derived_activity_id("lrs", USER_ID, course))


def writes(stack: Stack, activity_id: str | None = None) -> list[dict[str, Any]]:
    """The bridge's PATCH and DELETE requests (and their bodies) as the sandbox received them."""
    log = stack.requests_for("/learningCourseActivities/")
    return [r for r in log if r["method"] in ("PATCH", "DELETE") and not r["injected"]]


def test_voiding_a_completion_moves_the_record_back_and_sends_the_date_as_null(stack: Stack) -> None:
    course, progress, done = new_course(stack), str(uuid.uuid4()), str(uuid.uuid4())
    send_statements(stack, [statement("progressed", course, progress, extensions={PROGRESS: 40})])
    wait_for(lambda: lrs_record(stack, course), what="the record in progress")
    send_statements(stack, [statement("completed", course, done, completion=True)])
    wait_for(lambda: (lrs_record(stack, course) or {}).get("status") == "completed" or None)
    send_statements(stack, [voiding(done)])
    record = wait_for(
        lambda: r if (r := lrs_record(stack, course)) and r["status"] == "inProgress" else None,
        what="the voided completion withdrawn",
    )
    assert (record["completionPercentage"], record["completedDateTime"]) == (40, None)
    [last] = [w for w in writes(stack) if w["path"].endswith(record["id"])][-1:]
    assert last["body"]["@odata.type"] == SELF_INITIATED
    assert last["body"]["status"] == "inProgress"
    assert "completedDateTime" in last["body"]
    assert last["body"]["completedDateTime"] is None


def test_voiding_the_only_statement_deletes_the_record_and_a_later_one_creates_it_again(
    stack: Stack,
) -> None:
    course, only = new_course(stack), str(uuid.uuid4())
    send_statements(stack, [statement("completed", course, only, completion=True)])
    record = wait_for(lambda: lrs_record(stack, course), what="the record")
    send_statements(stack, [voiding(only)])
    wait_for(lambda: lrs_record(stack, course) is None or None, what="the record deleted")
    assert any(w["method"] == "DELETE" and w["path"].endswith(record["id"]) for w in writes(stack))
    send_statements(stack, [statement("progressed", course, str(uuid.uuid4()), extensions={PROGRESS: 10})])
    again = wait_for(lambda: lrs_record(stack, course), what="the record created again")
    assert (again["status"], again["completionPercentage"]) == ("inProgress", 10)


def test_a_progress_only_patch_carries_status_and_odata_type(stack: Stack) -> None:
    first, second = unique(), unique()
    course = {"externalId": new_course(stack)}
    stack.send(event(eventId=first, course=course))
    record = wait_for(lambda: stack.activity_of("generic", first), what="the record")
    stack.send(event(eventId=second, course=course, completionPercentage=75))
    wait_for(lambda: (stack.activity_of("generic", second) or {}).get("completionPercentage") == 75 or None)
    [patch] = [w for w in writes(stack) if w["path"].endswith(record["id"])]
    assert patch["body"] == {
        "@odata.type": SELF_INITIATED,
        "status": "inProgress",
        "completionPercentage": 75,
    }


def test_an_enrolment_is_acknowledged_as_ignored_and_creates_nothing(stack: Stack) -> None:
    enrolled = event(eventId=unique(), status="notStarted", completionPercentage=None)
    response = stack.send(enrolled)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 0
    assert [i["reason"] for i in body["ignored"]] == ["notStarted"]
    assert not any(enrolled["eventId"] in m for m in stack.peek(EVENTS_QUEUE))


def test_another_source_cannot_touch_a_record_by_its_id_or_by_reusing_an_event_id(stack: Stack) -> None:
    event_id, sender_id, course = unique(), unique("shared"), {"externalId": new_course(stack)}
    stack.send(
        event(
            eventId=event_id,
            course=course,
            status="completed",
            completionPercentage=None,
            externalCourseActivityId=sender_id,
        )
    )
    mine = wait_for(lambda: stack.activity_of("generic", event_id), what="the generic source's record")
    # The partner aims at that record: with the generic source's event id and its record's Graph
    # external id, then with the id the generic source sent.
    for partner_event, aimed in ((event_id, mine["externalcourseActivityId"]), (unique(), sender_id)):
        intrusion = event(
            eventId=partner_event, course=course, completionPercentage=5, externalCourseActivityId=aimed
        )
        assert stack.send(intrusion, source="partner", secret=PARTNER_SECRET).status_code == 202
        theirs = wait_for(lambda: stack.activity_of("partner", partner_event), what="the partner's record")  # noqa: B023
        assert theirs["id"] != mine["id"]
        assert (theirs["status"], theirs["completionPercentage"]) == ("inProgress", 5)
    after = stack.activity(mine["externalcourseActivityId"])
    assert after is not None
    assert (after["status"], after["completionPercentage"]) == ("completed", 100)


def test_one_person_sent_by_email_then_by_upn_is_one_record(stack: Stack) -> None:
    by_mail, by_upn = unique(), unique()
    course = {"externalId": new_course(stack)}
    stack.send(event(eventId=by_mail, course=course, learner={"email": "grace@contoso.example"}))
    first = wait_for(lambda: stack.activity_of("generic", by_mail), what="the record")
    stack.send(
        event(
            eventId=by_upn,
            course=course,
            learner={"upn": "grace.hopper@contoso.example"},
            completionPercentage=90,
        )
    )
    second = wait_for(lambda: stack.activity_of("generic", by_upn), what="the same record")
    assert second["id"] == first["id"]
    assert second["completionPercentage"] == 90


def test_a_long_retry_after_puts_the_event_back_on_the_queue_without_a_dead_letter(stack: Stack) -> None:
    event_id = unique()
    stack.faults(failNext=[{"status": 429, "retryAfterSeconds": 120, "method": "POST"}])
    stack.send(event(eventId=event_id, course={"externalId": new_course(stack)}))
    wait_for(lambda: any(r["injected"] for r in stack.requests_for("/learningCourseActivities")) or None)
    time.sleep(2)
    assert stack.dead_letter("generic", event_id) is None
    assert stack.peek(POISON_QUEUE) == []
    assert stack.queue_depth(EVENTS_QUEUE) == 1  # held back for 120 s: invisible, not lost
    assert stack.peek(EVENTS_QUEUE) == []
    with QueueClient.from_connection_string(stack.ports.connection_string(), EVENTS_QUEUE) as queue:
        queue.clear_messages()  # the test cannot wait two minutes; later tests need an empty queue


def test_a_throttled_create_is_applied_after_the_delay_graph_asked_for(stack: Stack) -> None:
    event_id = unique()
    stack.faults(failNext=[{"status": 429, "retryAfterSeconds": 4, "method": "POST"}])
    sent = time.monotonic()
    stack.send(event(eventId=event_id, course={"externalId": new_course(stack)}))
    wait_for(lambda: stack.activity_of("generic", event_id), timeout=30, what="the record after the delay")
    assert time.monotonic() - sent >= 4
    assert stack.dead_letter("generic", event_id) is None


def test_a_crash_while_creating_is_waited_out_not_dead_lettered(stack: Stack) -> None:
    course, event_id = new_course(stack), unique()
    activity_id = derived_activity_id("generic", USER_ID, course)

    async def plant_a_crashed_claim(store: TableStateStore) -> None:
        claim = await store.claim_activity(activity_id, ActivityOwner("generic", USER_ID, course))
        await store.save_activity(replace(claim, claimed_at=datetime.now(UTC)))

    stack.with_state(plant_a_crashed_claim)
    stack.send(event(eventId=event_id, course={"externalId": course}))
    record = wait_for(
        lambda: stack.activity_of("generic", event_id), timeout=CLAIM_LEASE_SECONDS + 20, what="the record"
    )
    assert record["externalcourseActivityId"] == activity_id
    assert stack.dead_letter("generic", event_id) is None


PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
