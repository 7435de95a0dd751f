"""Vendor enrolments as assignments through the real stack (issue 18, sources): a platform's own
enrolment webhook in, a learningAssignment with its due date in the Graph sandbox out."""

from functools import partial
from typing import Any

from tests.builders import FIXTURES, signed_headers
from tests.e2e.stack import Stack, wait_for

SOURCE = "docebo-assigning"
HEADERS = {"content-type": "application/json"}


def activity(stack: Stack, event_id: str) -> dict[str, Any] | None:
    return stack.activity_of(SOURCE, event_id)


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

    withdrawal = (FIXTURES / "docebo/enrollment-deleted.json").read_bytes()
    assert stack.post(withdrawal, HEADERS, source=SOURCE, path="/docebo-token").status_code == 202
    delivery = stack.delivery(SOURCE, "wh-7f3d01")
    assert delivery is not None
    assert delivery.activity_id
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
