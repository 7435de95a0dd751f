"""Vendor enrolments as assignments through the real stack (issue 18, sources): a platform's own
enrolment webhook in, a learningAssignment with its due date in the Graph sandbox out."""

import json
from collections import Counter
from functools import partial
from typing import Any

import httpx

from tests.builders import FIXTURES, signed_headers
from tests.e2e.stack import Stack, wait_for

SOURCE = "docebo-assigning"
HEADERS = {"content-type": "application/json"}


def activity(stack: Stack, event_id: str) -> dict[str, Any] | None:
    return stack.activity_of(SOURCE, event_id)


def activity_requests(stack: Stack) -> Counter[str]:
    """The sandbox's counters of course activity requests ("METHOD route status")."""
    counts = httpx.get(f"{stack.sandbox}/_sandbox/stats", timeout=10).json()["requests"]
    return Counter({k: v for k, v in counts.items() if " activit" in k})


def moved(due: str) -> bytes:
    """Docebo's enrollment update for the same enrolment, its validity end moved."""
    body = json.loads((FIXTURES / "docebo/enrollment-updated.json").read_bytes())
    body["message_id"] = "wh-7f3d03"
    body["payload"].update(
        {"fired_at": "2026-11-10 10:00:00", "status": "subscribed", "enrollment_date_end_validity": due}
    )
    return json.dumps(body).encode()


def test_a_docebo_enrolment_with_a_deadline_is_an_assignment_due_then(stack: Stack) -> None:
    body = (FIXTURES / "docebo/enrollment-created-with-deadline.json").read_bytes()
    response = stack.post(body, HEADERS, source=SOURCE, path="/docebo-token")
    assert response.status_code == 202, response.text
    assert response.json()["eventIds"] == ["wh-7f3d01"]

    record = wait_for(partial(activity, stack, "wh-7f3d01"), what="the Docebo enrolment's assignment")
    assert record["@odata.type"] == "#microsoft.graph.learningAssignment"
    assert record["assignmentType"] == "required"
    assert record["status"] == "notStarted"
    # 2026-12-31 18:00 in the source's zone (Paris, UTC+1 in winter), as Graph's dateTimeTimeZone
    assert record["dueDateTime"] == {"dateTime": "2026-12-31T17:00:00.0000000", "timeZone": "UTC"}
    assert record["assignedDateTime"].startswith("2026-11-02T08:00:00")
    assert record.get("assignerUserId") is None  # no Entra user holds Docebo id 12355: left out

    delivery = stack.delivery(SOURCE, "wh-7f3d01")
    assert delivery is not None
    assert delivery.activity_id
    before = activity_requests(stack)
    assert (
        stack.post(moved("2027-01-15 17:00:00"), HEADERS, source=SOURCE, path="/docebo-token").status_code
        == 202
    )
    wait_for(
        lambda: getattr(stack.delivery(SOURCE, "wh-7f3d03"), "status", None) == "applied" or None,
        what="the update applied",
    )
    assert activity_requests(stack) - before == Counter({"PATCH activityById 204": 1})
    moved_to = (stack.activity(delivery.activity_id) or {}).get("dueDateTime")
    assert moved_to == {"dateTime": "2027-01-15T16:00:00.0000000", "timeZone": "UTC"}  # 17:00 in Paris

    withdrawal = (FIXTURES / "docebo/enrollment-deleted.json").read_bytes()
    assert stack.post(withdrawal, HEADERS, source=SOURCE, path="/docebo-token").status_code == 202
    wait_for(lambda: stack.activity(delivery.activity_id) is None or None, what="the assignment deleted")


def test_a_360learning_path_enrolment_is_an_assignment_until_the_learner_is_not_enrolled(
    stack: Stack,
) -> None:
    source = "360learning-assigning"
    body = (
        (FIXTURES / "360learning/path-status-updated.json")
        .read_bytes()
        .replace(b'"onTime"', b'"notYetStarted"')
    )
    response = stack.post(body, signed_headers(body, msg_id="msg_e2e_assigned"), source=source)
    assert response.status_code == 202, response.text

    record = wait_for(partial(stack.activity_of, source, "msg_e2e_assigned"), what="the path's assignment")
    assert record["@odata.type"] == "#microsoft.graph.learningAssignment"
    assert (record["assignmentType"], record["status"]) == ("required", "notStarted")
    assert record.get("dueDateTime") is None  # 360Learning's webhooks carry no due date

    withdrawal = (FIXTURES / "360learning/path-status-not-enrolled.json").read_bytes()
    response = stack.post(withdrawal, signed_headers(withdrawal, msg_id="msg_e2e_unassigned"), source=source)
    assert response.status_code == 202, response.text
    delivery = stack.delivery(source, "msg_e2e_assigned")
    assert delivery is not None
    assert delivery.activity_id
    wait_for(lambda: stack.activity(delivery.activity_id) is None or None, what="the assignment deleted")


def test_a_canvas_student_enrollment_is_an_assignment_of_its_course_until_deleted(stack: Stack) -> None:
    source = "canvas-assigning"
    body = (FIXTURES / "canvas/enrollment-created.json").read_bytes()
    response = stack.post(body, HEADERS, source=source, path="/canvas-path-token")
    assert response.status_code == 202, response.text
    [event_id] = response.json()["eventIds"]

    record = wait_for(partial(stack.activity_of, source, event_id), what="the Canvas enrollment's assignment")
    assert record["@odata.type"] == "#microsoft.graph.learningAssignment"
    assert (record["assignmentType"], record["status"]) == ("required", "notStarted")
    assert record.get("dueDateTime") is None  # Canvas documents no due date for an enrollment

    withdrawal = (FIXTURES / "canvas/enrollment-deleted.json").read_bytes()
    response = stack.post(withdrawal, HEADERS, source=source, path="/canvas-path-token")
    assert response.status_code == 202, response.text
    delivery = stack.delivery(source, event_id)
    assert delivery is not None
    assert delivery.activity_id
    wait_for(lambda: stack.activity(delivery.activity_id) is None or None, what="the assignment deleted")
