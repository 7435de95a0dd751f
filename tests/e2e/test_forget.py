"""`forget` end to end: a learner's records leave the sandbox and their rows leave Azurite, the
receipt gives counts only, and a later event for them is applied as a new record."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from functools import partial
from typing import Any

import httpx

from tests.builders import USER_ID, event
from tests.e2e.stack import Stack, cli, create_user, wait_for


def activity_requests(stack: Stack) -> Counter[str]:
    """The sandbox's counters of course activity requests ("METHOD route status")."""
    counts = httpx.get(f"{stack.sandbox}/_sandbox/stats", timeout=10).json()["requests"]
    return Counter({k: v for k, v in counts.items() if " activit" in k})


def new_user(stack: Stack) -> tuple[str, str]:
    email = f"forget-{uuid.uuid4().hex[:8]}@contoso.example"
    return email, create_user(stack, email, "Data Subject")


def test_forget_removes_the_learner_from_graph_and_state_then_later_events_work(stack: Stack) -> None:
    email, user_id = new_user(stack)
    ids = [f"fg-{uuid.uuid4()}" for _ in range(3)]
    stack.send(event(eventId=ids[0], learner={"email": email}))
    stack.send(event(eventId=ids[1], learner={"email": email}, course={"externalId": "course-202"}))
    stack.send(event(eventId=ids[2], learner={"email": email}, course={"externalId": "course-unknown"}))
    records = [wait_for(partial(stack.activity_of, "generic", i), what="applied") for i in ids[:2]]
    wait_for(lambda: stack.dead_letter("generic", ids[2]), what="the parked event")
    activity_ids = [stack.delivery("generic", i).activity_id for i in ids[:2]]  # type: ignore[union-attr]
    assert all(r["learnerUserId"] == user_id for r in records)

    dry = cli(stack, "forget", "--learner", "email", email)
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout
    assert "2 Graph course activities" in dry.stdout
    assert all(stack.activity(a) is not None for a in activity_ids)

    done = cli(stack, "forget", "--learner", "upn", email, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    receipt = json.loads(done.stdout)
    assert receipt == {
        "dryRun": False,
        "graphRecords": 2,
        "graphRecordsAlreadyGone": 0,
        "activities": 3,  # the parked event's activity was claimed, then waited for its course
        "eventLogEntries": 3,
        "deliveries": 3,
        "deadLetters": 1,
        "assignerRecords": 0,
        "assignerEntries": 0,
        "assignerLetters": 0,
        "assignerPending": 0,
    }
    assert email not in done.stdout + done.stderr + dry.stdout
    assert user_id not in done.stdout + done.stderr + dry.stdout
    assert all(stack.activity(a) is None for a in activity_ids)
    assert all(stack.delivery("generic", i) is None for i in ids)
    assert stack.dead_letter("generic", ids[2]) is None
    assert stack.with_state(lambda store: store.activity(activity_ids[0])) is None

    later = f"fg-{uuid.uuid4()}"
    stack.send(event(eventId=later, learner={"email": email}, completionPercentage=15))
    record = wait_for(lambda: stack.activity_of("generic", later), what="a later event applied")
    assert (record["learnerUserId"], record["completionPercentage"]) == (user_id, 15)


def test_a_departed_employee_deleted_from_entra_is_forgotten_by_object_id(stack: Stack) -> None:
    """The most common data-subject request: the account is already deleted from Entra
    (DELETE /users/{id}), and the operator names it by the object id the README asks for."""
    email, user_id = new_user(stack)
    ids = [f"fg-{uuid.uuid4()}" for _ in range(3)]
    stack.send(event(eventId=ids[0], learner={"email": email}))
    stack.send(event(eventId=ids[1], learner={"email": email}, course={"externalId": "course-202"}))
    stack.send(event(eventId=ids[2], learner={"email": email}, course={"externalId": "course-unknown"}))
    for i in ids[:2]:
        wait_for(partial(stack.activity_of, "generic", i), what="applied")
    wait_for(lambda: stack.dead_letter("generic", ids[2]), what="the parked event")
    activity_ids = [stack.delivery("generic", i).activity_id for i in ids[:2]]  # type: ignore[union-attr]
    graph_ids = [stack.activity(a)["id"] for a in activity_ids]  # type: ignore[index]
    httpx.delete(f"{stack.sandbox}/v1.0/users/{user_id}", timeout=10).raise_for_status()
    assert httpx.get(f"{stack.sandbox}/v1.0/users/{user_id}", timeout=10).status_code == 404

    done = cli(stack, "forget", "--learner", "userId", user_id, "--yes", "--json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "dryRun": False,
        "graphRecords": 2,
        "graphRecordsAlreadyGone": 0,
        "activities": 3,
        "eventLogEntries": 3,
        "deliveries": 3,
        "deadLetters": 1,
        "assignerRecords": 0,
        "assignerEntries": 0,
        "assignerLetters": 0,
        "assignerPending": 0,
    }
    assert "Entra has no user with that object id" in done.stderr
    assert user_id not in done.stdout + done.stderr
    assert all(stack.activity(a) is None for a in activity_ids)
    listed = httpx.get(stack.activities_url, timeout=10).json()["value"]
    assert not {r["id"] for r in listed} & set(graph_ids)
    assert all(stack.delivery("generic", i) is None for i in ids)
    assert stack.dead_letter("generic", ids[2]) is None
    again = cli(stack, "forget", "--learner", "userId", user_id, "--json")
    assert json.loads(again.stdout)["activities"] == 0


def test_an_unknown_email_removes_only_letters_and_says_so_and_an_unknown_kind_is_exit_2(
    stack: Stack,
) -> None:
    missing = cli(stack, "forget", "--learner", "email", "nobody-here@contoso.example")
    assert missing.returncode == 1, missing.stderr
    assert "would remove: 0 Graph course activities" in missing.stdout
    assert "--learner userId" in missing.stderr
    assert "error:" not in missing.stderr
    wrong = cli(stack, "forget", "--learner", "phone", "123")
    assert wrong.returncode == 2
    assert "email, upn, userId" in wrong.stderr


def test_unreachable_storage_is_one_line_and_exit_2(stack: Stack) -> None:
    down = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        + ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
        + ";TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    # A learner Entra knows (userId learners are looked up), so the command gets as far as storage.
    result = cli(stack, "forget", "--learner", "userId", USER_ID, env={"BRIDGE_STORAGE": down})
    assert (result.returncode, result.stderr.count("\n")) == (2, 1), result.stderr
    assert "state store" in result.stderr


def test_forgetting_an_assigner_leaves_the_learner_s_assignment_without_them(stack: Stack) -> None:
    """Issue 18: a manager who assigned a course to someone else is forgotten. Graph cannot change
    assignerUserId by PATCH, so the learner's record is created again (a new Graph id) from the log
    without the assigner: still a required assignment with its due date and the learner's progress;
    no row or log entry in Azurite names the manager any more, and a second run finds nothing."""
    manager_email, manager_id = new_user(stack)
    learner_email, learner_id = new_user(stack)
    assign, start = f"fg-{uuid.uuid4()}", f"fg-{uuid.uuid4()}"
    due = {"type": "required", "dueAt": "2026-12-31T17:00:00Z", "assigner": {"email": manager_email}}
    stack.send(
        event(
            eventId=assign,
            learner={"email": learner_email},
            status="notStarted",
            completionPercentage=None,
            assignment=due,
        )
    )
    wait_for(partial(stack.activity_of, "generic", assign), what="the assignment applied")
    stack.send(
        event(
            eventId=start,
            learner={"email": learner_email},
            occurredAt="2026-11-21T09:00:00Z",
            completionPercentage=35,
        )
    )

    def progressed() -> dict[str, Any] | None:
        record = stack.activity_of("generic", start)
        return record if record is not None and record.get("completionPercentage") == 35 else None

    before = wait_for(progressed, what="the progress applied")
    assert (before["assignerUserId"], before["learnerUserId"]) == (manager_id, learner_id)
    activity_id = stack.delivery("generic", assign).activity_id  # type: ignore[union-attr]
    before_requests = activity_requests(stack)

    done = cli(stack, "forget", "--learner", "email", manager_email, "--yes", "--json")

    assert done.returncode == 0, done.stderr
    assert activity_requests(stack) - before_requests == Counter(
        {"DELETE activityById 204": 1, "GET activityByExternalId 404": 1, "POST activities 201": 1}
    )
    receipt = json.loads(done.stdout)
    assert (receipt["assignerRecords"], receipt["assignerEntries"], receipt["assignerPending"]) == (1, 1, 0)
    assert manager_id not in done.stdout + done.stderr
    after = stack.activity(activity_id)
    assert after is not None
    assert after["id"] != before["id"]
    assert after["@odata.type"] == "#microsoft.graph.learningAssignment"
    assert after.get("assignerUserId") is None
    assert (after["assignmentType"], after["dueDateTime"], after["completionPercentage"]) == (
        "required",
        before["dueDateTime"],
        35,
    )
    row = stack.with_state(lambda store: store.activity(activity_id))
    assert row is not None
    assert (row.graph_id, row.assigner_user_id) == (after["id"], None)
    entries = stack.with_state(lambda store: store.events(activity_id))
    assert all(e.assignment is None or e.assignment.assigner_user_id is None for e in entries)
    again = cli(stack, "forget", "--learner", "email", manager_email, "--json")
    assert json.loads(again.stdout)["assignerRecords"] == 0
