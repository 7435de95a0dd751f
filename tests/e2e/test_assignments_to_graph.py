"""Assignments through the real stack (issue 18): signed webhooks in, one learningAssignment per learner
and course in the Graph sandbox out (HTTP, the dev host, Azurite, msgraph-sdk, the sandbox's rules).
Each scenario counts its course activity requests with the sandbox's counters (`/_sandbox/stats`)."""

import random
import uuid
from collections import Counter
from typing import Any

import httpx

from shared.events.identity import explicit_activity_id
from shared.events.queue import EVENTS_QUEUE
from tests.builders import USER_ID, event
from tests.e2e.stack import Stack, wait_for

ASSIGNMENT = "#microsoft.graph.learningAssignment"
SELF = "#microsoft.graph.learningSelfInitiatedCourse"


def unique() -> str:
    return f"as-{uuid.uuid4()}"


def in_graph(sender_id: str) -> str:
    return explicit_activity_id("generic", sender_id)


def assigned(record: str, at: str, **assignment: Any) -> dict[str, Any]:
    return event(
        eventId=unique(),
        externalCourseActivityId=record,
        occurredAt=at,
        status="notStarted",
        completionPercentage=None,
        assignment=(
            {"type": "required", **assignment}
            if "dueDate" in assignment
            else {"type": "required", "dueAt": "2026-12-31T17:00:00Z", **assignment}
        ),
    )


def progress(record: str, at: str, status: str = "inProgress", percentage: int | None = 40) -> dict[str, Any]:
    return event(
        eventId=unique(),
        externalCourseActivityId=record,
        occurredAt=at,
        status=status,
        completionPercentage=percentage,
    )


def withdrawn(record: str, at: str) -> dict[str, Any]:
    return event(
        eventId=unique(),
        externalCourseActivityId=record,
        occurredAt=at,
        status="notStarted",
        completionPercentage=None,
        assignment={"withdrawn": True},
    )


def activity_requests(stack: Stack) -> Counter[str]:
    """The sandbox's counters of course activity requests ("METHOD route status")."""
    counts = httpx.get(f"{stack.sandbox}/_sandbox/stats", timeout=10).json()["requests"]
    return Counter({k: v for k, v in counts.items() if " activit" in k})


def applied(stack: Stack, body: dict[str, Any]) -> None:
    def done() -> bool | None:
        delivery = stack.delivery("generic", body["eventId"])
        return (delivery is not None and delivery.status == "applied") or None

    wait_for(done, what=f"event {body['eventId']} applied")
    wait_for(lambda: stack.queue_depth(EVENTS_QUEUE) == 0 or None, what="an empty queue")


def send_applied(stack: Stack, body: dict[str, Any]) -> Counter[str]:
    """Send one event, wait until it is applied; the course activity requests it cost."""
    before = activity_requests(stack)
    assert stack.send(body).status_code == 202
    applied(stack, body)
    return activity_requests(stack) - before


def record_of(stack: Stack, record: str) -> dict[str, Any]:
    found = stack.activity(in_graph(record))
    assert found is not None
    return found


def test_assign_then_progress_then_complete_is_one_completed_assignment(stack: Stack) -> None:
    record = unique()
    new = send_applied(
        stack,
        assigned(
            record,
            "2026-11-02T09:00:00Z",
            notes="Before the audit.",
            assigner={"email": "ada.lovelace@contoso.example"},
        ),
    )
    created = record_of(stack, record)
    assert created["@odata.type"] == ASSIGNMENT
    assert (created["status"], created["assignmentType"]) == ("notStarted", "required")
    assert created["dueDateTime"] == {"dateTime": "2026-12-31T17:00:00.0000000", "timeZone": "UTC"}
    assert created["notes"] == {"contentType": "text", "content": "Before the audit."}
    assert created["learningProviderId"]
    assert created["assignerUserId"] == USER_ID
    assert created["assignedDateTime"].startswith("2026-11-02T09:00:00")
    assert new == Counter({"GET activityByExternalId 404": 1, "POST activities 201": 1})

    moving = send_applied(stack, progress(record, "2026-11-03T09:00:00Z"))
    done = send_applied(stack, progress(record, "2026-11-04T09:00:00Z", "completed", None))
    final = record_of(stack, record)
    assert final["id"] == created["id"]  # the same record all along
    assert (final["@odata.type"], final["status"], final["completionPercentage"]) == (
        ASSIGNMENT,
        "completed",
        100,
    )
    assert moving == Counter({"PATCH activityById 204": 1})
    assert done == Counter({"PATCH activityById 204": 1})


def test_a_moved_due_date_is_one_patch(stack: Stack) -> None:
    record = unique()
    send_applied(stack, assigned(record, "2026-11-02T09:00:00Z"))
    moved = send_applied(
        stack, assigned(record, "2026-11-05T09:00:00Z", dueDate="2027-01-15", timeZone="Europe/Paris")
    )
    assert moved == Counter({"PATCH activityById 204": 1})
    patched = [r for r in stack.requests_for(record_of(stack, record)["id"]) if r["method"] == "PATCH"]
    assert "assignmentType" not in patched[-1]["body"]  # a PATCH never changes it
    assert record_of(stack, record)["dueDateTime"] == {
        "dateTime": "2027-01-15T22:59:59.0000000",
        "timeZone": "UTC",
    }


def test_withdrawn_before_any_progress_deletes_the_assignment(stack: Stack) -> None:
    record = unique()
    send_applied(stack, assigned(record, "2026-11-02T09:00:00Z"))
    gone = send_applied(stack, withdrawn(record, "2026-11-03T09:00:00Z"))
    assert stack.activity(in_graph(record)) is None
    assert gone == Counter({"DELETE activityById 204": 1})


def test_withdrawn_after_progress_is_one_self_initiated_record_carrying_it(stack: Stack) -> None:
    record = unique()
    send_applied(stack, assigned(record, "2026-11-02T09:00:00Z"))
    send_applied(stack, progress(record, "2026-11-03T09:00:00Z", percentage=55))
    turned = send_applied(stack, withdrawn(record, "2026-11-04T09:00:00Z"))
    final = record_of(stack, record)
    assert (final["@odata.type"], final["status"], final["completionPercentage"]) == (SELF, "inProgress", 55)
    assert final["startedDateTime"].startswith("2026-11-03T09:00:00")  # from the progress, kept aside
    assert turned == Counter(
        {"DELETE activityById 204": 1, "GET activityByExternalId 404": 1, "POST activities 201": 1}
    )


def test_self_initiated_progress_then_assigned_is_one_assignment_carrying_the_progress(stack: Stack) -> None:
    record = unique()
    send_applied(stack, progress(record, "2026-11-01T09:00:00Z", percentage=70))
    assert record_of(stack, record)["@odata.type"] == SELF
    turned = send_applied(stack, assigned(record, "2026-11-02T09:00:00Z"))
    final = record_of(stack, record)
    assert (final["@odata.type"], final["status"], final["completionPercentage"]) == (
        ASSIGNMENT,
        "inProgress",
        70,
    )
    assert [a for a in stack.activities() if a["externalcourseActivityId"] == in_graph(record)] == [final]
    assert turned == Counter(
        {"DELETE activityById 204": 1, "GET activityByExternalId 404": 1, "POST activities 201": 1}
    )


def test_duplicates_and_reordering_end_in_the_same_record(stack: Stack) -> None:
    """The same story (self-initiated progress, assigned, due date moved, withdrawn, assigned again,
    completed) sent in time order to one record, and shuffled with duplicates to another."""

    def story(record: str) -> list[dict[str, Any]]:
        return [
            progress(record, "2026-11-01T09:00:00Z", percentage=20),
            assigned(record, "2026-11-02T09:00:00Z", notes="First."),
            assigned(record, "2026-11-03T09:00:00Z", dueAt="2027-02-01T12:00:00+01:00", notes="Moved."),
            withdrawn(record, "2026-11-04T09:00:00Z"),
            assigned(
                record, "2026-11-05T09:00:00Z", type="recommended", dueDate="2027-03-01", timeZone="UTC"
            ),
            progress(record, "2026-11-06T09:00:00Z", "completed", None),
        ]

    ordered, shuffled = unique(), unique()
    for body in story(ordered):
        send_applied(stack, body)
    events = story(shuffled)
    redelivered = events + random.sample(events, 3)
    random.shuffle(redelivered)
    for body in redelivered:
        assert stack.send(body).status_code == 202
    for body in events:
        applied(stack, body)

    def comparable(record: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in record.items()
            if k not in ("id", "externalcourseActivityId", "externalCourseActivityId")
        }

    expected = record_of(stack, ordered)
    assert (expected["@odata.type"], expected["assignmentType"], expected["status"]) == (
        ASSIGNMENT,
        "recommended",
        "completed",
    )
    assert expected["notes"] is None
    wait_for(
        lambda: comparable(record_of(stack, shuffled)) == comparable(expected) or None, what="the same record"
    )
    assert len([a for a in stack.activities() if a["externalcourseActivityId"] == in_graph(shuffled)]) == 1
