"""Retention end to end: `compact` removes old delivery rows and folds old event logs on Azurite, the
records in the sandbox stay exactly as they were, and later events still fold on top of the baseline."""

from __future__ import annotations

import json
import time
import uuid
from functools import partial
from typing import Any

from shared.operations.retention import BASELINE_SOURCE
from tests.builders import event
from tests.e2e.stack import Stack, cli, create_user, wait_for


def patches(stack: Stack) -> list[object]:
    return [r for r in stack.requests_for("learningCourseActivities") if r["method"] == "PATCH"]


def record(stack: Stack, record_id: str) -> dict[str, Any] | None:
    return next((r for r in stack.activities() if r["id"] == record_id), None)


def test_compaction_keeps_every_record_and_later_events_fold_on_top(stack: Stack) -> None:
    email = f"retain-{uuid.uuid4().hex[:8]}@contoso.example"
    user_id = create_user(stack, email, "Long Learner")
    a = [f"rt-{uuid.uuid4()}" for _ in range(3)]
    b = f"rt-{uuid.uuid4()}"
    course_a = {"externalId": "course-101"}
    steps = [(a[0], "inProgress", 20), (a[1], "inProgress", 60), (a[2], "completed", None)]
    for i, (event_id, status, percentage) in enumerate(steps):
        occurred = f"2026-03-0{i + 1}T10:00:00Z"
        stack.send(
            event(
                eventId=event_id,
                learner={"email": email},
                course=course_a,
                status=status,
                occurredAt=occurred,
                completionPercentage=percentage,
            )
        )
    stack.send(
        event(
            eventId=b, learner={"email": email}, course={"externalId": "course-202"}, completionPercentage=30
        )
    )
    wait_for(lambda: ((r := stack.activity_of("generic", a[2])) and r["status"] == "completed" and r) or None)
    id_b = wait_for(partial(stack.activity_of, "generic", b), what="course B applied")["id"]
    before = {r["id"]: r for r in stack.activities()}
    activity_a = stack.delivery("generic", a[0]).activity_id  # type: ignore[union-attr]
    time.sleep(0.1)  # every row above is now older than "0 days"

    done = cli(stack, "compact", "--days", "0", "--sizes", "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["deliveriesRemoved"] >= 4
    assert figures["entriesFolded"] >= 2
    assert figures["sizesAfter"]["deliveries"] < figures["sizesBefore"]["deliveries"]
    assert figures["sizesAfter"]["events"] < figures["sizesBefore"]["events"]
    assert {r["id"]: r for r in stack.activities()} == before  # no record changed
    assert stack.delivery("generic", a[0]) is None
    log = stack.with_state(lambda store: store.events(activity_a))
    assert [entry.source for entry in log] == [BASELINE_SOURCE]

    # a redelivery of a compacted event changes nothing; a new one folds on top of the baseline
    writes = len(patches(stack))
    stack.send(
        event(
            eventId=a[0],
            learner={"email": email},
            course=course_a,
            completionPercentage=20,
            occurredAt="2026-03-01T10:00:00Z",
        )
    )
    stack.send(
        event(
            eventId=f"rt-{uuid.uuid4()}",
            learner={"email": email},
            course={"externalId": "course-202"},
            completionPercentage=55,
        )
    )
    record_b = wait_for(
        lambda: ((r := record(stack, id_b)) and r["completionPercentage"] == 55 and r) or None,
        what="course B moved on",
    )
    assert record_b["status"] == "inProgress"
    wait_for(lambda: stack.delivery("generic", a[0]), what="the redelivery applied")
    id_a = next(r["id"] for r in before.values() if r["id"] != id_b and r["learnerUserId"] == user_id)
    assert record(stack, id_a) == before[id_a]
    assert len(patches(stack)) == writes + 1  # course B's only
