"""Retention never rewrites a learner's history: the audit's scenarios (issue 17), end to end through
the webhook, the dev host, Azurite, the Graph sandbox and `compact --days 0` between steps.

Each one failed before compaction read the log as the queue side reads it (voidings applied) and gave
every baseline a key of its own: a completion vanished after the held baseline spilled, a voided
completion came back, an activity stayed busy forever, a parked event stayed parked."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.delivery.merge import fold
from shared.events.identity import derived_activity_id
from shared.operations.retention import BASELINE_SOURCE
from tests.builders import USER_ID, event
from tests.e2e.stack import Stack, cli, create_user, wait_for
from tests.e2e.test_graph_truth import lrs_record, new_course, send_statements, statement, voiding

DAY0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(day: int) -> str:
    return (DAY0 + timedelta(days=day)).isoformat().replace("+00:00", "Z")


def compact(stack: Stack) -> dict[str, Any]:
    time.sleep(0.05)  # every row written so far is older than "0 days"
    done = cli(stack, "compact", "--days", "0", "--json")
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def send_all(stack: Stack, events: list[dict[str, Any]]) -> None:
    """Deliver the events (at most 100 a delivery) and wait until every one is applied."""
    for start in range(0, len(events), 100):
        assert stack.send(events[start : start + 100]).status_code == 202
    ids = [e["eventId"] for e in events]

    async def applied(store: Any) -> bool:
        for event_id in ids:
            row = await store.delivery("generic", event_id)
            if row is None or row.status != "applied":
                return False
        return True

    wait_for(lambda: stack.with_state(applied), timeout=120, what=f"{len(ids)} events applied")


def progress(email: str, course: str, day: int, percentage: int) -> dict[str, Any]:
    return event(
        eventId=f"hist-{uuid.uuid4()}",
        learner={"email": email},
        course={"externalId": course},
        status="inProgress",
        completionPercentage=percentage,
        occurredAt=at(day),
        startedAt=at(day),
    )


def test_a_completion_survives_compactions_around_spills_of_the_held_baseline(stack: Stack) -> None:
    email = f"hist-{uuid.uuid4().hex[:8]}@contoso.example"
    create_user(stack, email, "Long History")
    course = new_course(stack)
    completion = event(
        eventId=f"hist-{uuid.uuid4()}",
        learner={"email": email},
        course={"externalId": course},
        status="completed",
        occurredAt=at(3),
        startedAt=at(2),
        completedAt=at(3),
        completionPercentage=None,
    )
    send_all(stack, [completion, progress(email, course, 4, 5)])
    first = wait_for(lambda: stack.activity_of("generic", completion["eventId"]), what="the record")
    assert (first["status"], first["completionPercentage"]) == ("completed", 100)
    compact(stack)  # the held entries become the held baseline
    send_all(stack, [progress(email, course, 10 + i, 10 + i % 50) for i in range(64)])  # the row spills
    send_all(stack, [progress(email, course, 80 + i, 20) for i in range(2)])
    compact(stack)  # a new held baseline; the rows fold into a baseline row
    send_all(stack, [progress(email, course, 100 + i, 5 + i % 55) for i in range(200)])  # spills again
    compact(stack)
    late = progress(email, course, 400, 5)
    send_all(stack, [late])

    record = stack.activity_of("generic", late["eventId"])
    assert record is not None
    assert (record["status"], record["completionPercentage"]) == ("completed", 100)
    assert record["completedDateTime"].startswith(at(3)[:10])
    assert record["startedDateTime"] == first["startedDateTime"]


def test_an_activity_whose_held_baseline_spilled_is_compacted_not_left_busy(stack: Stack) -> None:
    email = f"hist-{uuid.uuid4().hex[:8]}@contoso.example"
    create_user(stack, email, "Busy Forever")
    course = new_course(stack)
    send_all(stack, [progress(email, course, 1, 10), progress(email, course, 2, 20)])
    compact(stack)  # held baseline
    send_all(stack, [progress(email, course, 3 + i, 21 + i % 40) for i in range(64)])  # it spills
    first = compact(stack)
    again = compact(stack)
    assert first["logsBusy"] == 0, first
    assert again["logsBusy"] == 0, again

    async def log_of(store: Any) -> list[Any]:
        rows = [row async for row in store.all_activities() if row.owner and row.owner.course_id == course]
        assert len(rows) == 1
        return list(await store.events(rows[0].activity_id))

    entries = stack.with_state(log_of)
    assert [e.source for e in entries] == [BASELINE_SOURCE], "everything old folds into one baseline"
    assert fold(entries) is not None
    assert fold(entries).completion_percentage == 60  # type: ignore[union-attr]


def test_a_voided_completion_stays_voided_after_compaction(stack: Stack) -> None:
    course = new_course(stack)
    began, done = str(uuid.uuid4()), str(uuid.uuid4())
    send_statements(stack, [statement("progressed", course, began, extensions=_progress(0.4))])
    wait_for(lambda: lrs_record(stack, course), what="the record in progress")
    send_statements(stack, [statement("completed", course, done, completion=True)])
    wait_for(lambda: (lrs_record(stack, course) or {}).get("status") == "completed" or None)
    send_statements(stack, [voiding(done)])
    wait_for(
        lambda: (lrs_record(stack, course) or {}).get("status") == "inProgress" or None,
        what="the voided completion withdrawn",
    )
    compact(stack)
    later = str(uuid.uuid4())
    send_statements(stack, [statement("progressed", course, later, extensions=_progress(0.45))])
    wait_for(
        lambda: ((d := stack.delivery("lrs", later)) is not None and d.status == "applied") or None,
        what="the later statement applied",
    )
    record = stack.activity(derived_activity_id("lrs", USER_ID, course))
    assert record is not None
    assert (record["status"], record["completionPercentage"]) == ("inProgress", 45)
    assert record.get("completedDateTime") is None


def test_a_parked_event_applied_after_compaction_leaves_no_dead_letter(stack: Stack) -> None:
    course = f"hist-course-{uuid.uuid4().hex[:8]}"  # not in Viva Learning yet: the event is parked
    parked = event(eventId=f"hist-{uuid.uuid4()}", course={"externalId": course})
    assert stack.send(parked).status_code == 202
    wait_for(lambda: stack.dead_letter("generic", parked["eventId"]), what="the parked event")
    compact(stack)  # the parked event's delivery row is older than the period
    new_course(stack, course)
    retried = cli(stack, "replay", f"generic:{parked['eventId']}")
    assert retried.returncode == 0, retried.stderr
    wait_for(lambda: stack.activity_of("generic", parked["eventId"]), what="the parked event applied")
    wait_for(lambda: stack.dead_letter("generic", parked["eventId"]) is None or None, what="letter gone")
    status = cli(stack, "status")
    assert f"generic:{parked['eventId']}" not in status.stdout


def _progress(scaled: float) -> dict[str, float]:
    return {"https://w3id.org/xapi/cmi5/result/extensions/progress": scaled * 100}
