"""`progressFrom` through the real stack (issue 18): an HR system assigns a course, the LMS (a source
the HR source's `progressFrom` names) reports progress and completion, and the sandbox holds one
learningAssignment for the learner and course, completed: never a second, self-initiated record."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.builders import event
from tests.e2e.stack import PARTNER_SECRET, Stack, create_user, wait_for

ASSIGNMENT = "#microsoft.graph.learningAssignment"


def send(stack: Stack, source: str, **fields: Any) -> str:
    event_id = f"pf-{uuid.uuid4()}"
    response = stack.send(event(eventId=event_id, **fields), source=source, secret=PARTNER_SECRET)
    assert response.status_code == 202, response.text
    return event_id


def applied(stack: Stack, source: str, event_id: str) -> str:
    def done() -> str | None:
        delivery = stack.delivery(source, event_id)
        return delivery.activity_id if delivery is not None and delivery.status == "applied" else None

    found: str = wait_for(done, what=f"{source} event applied")
    return found


def test_the_lms_s_progress_completes_the_assignment_the_hr_system_made(stack: Stack) -> None:
    email = f"pf-{uuid.uuid4().hex[:8]}@contoso.example"
    user_id = create_user(stack, email, "Assigned Learner")
    course, learner = {"externalId": "course-202"}, {"email": email}
    assign = send(
        stack,
        "hr",
        learner=learner,
        course=course,
        status="notStarted",
        completionPercentage=None,
        assignment={"type": "required", "dueAt": "2026-12-31T17:00:00Z"},
    )
    record = applied(stack, "hr", assign)
    started = send(stack, "lms-progress", learner=learner, course=course, occurredAt="2026-11-21T09:00:00Z")
    finished = send(
        stack,
        "lms-progress",
        learner=learner,
        course=course,
        occurredAt="2026-11-22T09:00:00Z",
        status="completed",
        completionPercentage=None,
    )
    assert applied(stack, "lms-progress", started) == record
    assert applied(stack, "lms-progress", finished) == record

    final = stack.activity(record)
    assert final is not None
    assert (final["@odata.type"], final["status"], final["completionPercentage"]) == (
        ASSIGNMENT,
        "completed",
        100,
    )
    assert final["dueDateTime"] == {"dateTime": "2026-12-31T17:00:00.0000000", "timeZone": "UTC"}
    listed = httpx.get(stack.activities_url, timeout=10).json()["value"]
    mine = [
        r
        for r in listed
        if r["learnerUserId"] == user_id and r["learningContentId"] == final["learningContentId"]
    ]
    assert [r["id"] for r in mine] == [final["id"]]
