"""`reconcile` end to end: records edited and deleted in the sandbox behind the bridge's back are
reported as drift, `--repair` writes what the events call for again, and a second run finds none."""

from __future__ import annotations

import json
import uuid
from functools import partial

import httpx

from tests.builders import event
from tests.e2e.stack import PARTNER_SECRET, Stack, cli, wait_for

SELF_INITIATED = "#microsoft.graph.learningSelfInitiatedCourse"


def send(stack: Stack, **fields: object) -> str:
    event_id = f"rc-{uuid.uuid4()}"
    response = stack.send(event(eventId=event_id, **fields), source="audit", secret=PARTNER_SECRET)
    assert response.status_code == 202, response.text
    return event_id


def test_drift_is_reported_then_repaired(stack: Stack) -> None:
    # Earlier runs' records stay in the session's stack: start from a reconciled state.
    cli(stack, "reconcile", "--source", "audit", "--repair")
    ids = [
        send(stack, completionPercentage=40, externalCourseActivityId=f"rc-{uuid.uuid4()}"),
        send(stack, completionPercentage=60, externalCourseActivityId=f"rc-{uuid.uuid4()}"),
        send(
            stack,
            status="completed",
            completionPercentage=None,
            externalCourseActivityId=f"rc-{uuid.uuid4()}",
        ),
    ]
    edited, deleted, untouched = (
        wait_for(partial(stack.activity_of, "audit", i), what="applied") for i in ids
    )
    body = {"@odata.type": SELF_INITIATED, "status": "inProgress", "completionPercentage": 5}
    httpx.patch(f"{stack.activities_url}/{edited['id']}", json=body, timeout=10).raise_for_status()
    httpx.delete(f"{stack.activities_url}/{deleted['id']}", timeout=10).raise_for_status()

    found = cli(stack, "reconcile", "--source", "audit", "--json")
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    drift = {d["activityId"]: d for d in report["drift"]}
    edited_id = edited["externalcourseActivityId"]
    deleted_id = deleted["externalcourseActivityId"]
    assert set(drift) == {edited_id, deleted_id}
    assert drift[deleted_id]["kind"] == "missing"
    assert (drift[edited_id]["kind"], drift[edited_id]["fields"]) == ("changed", ["completionPercentage"])
    assert stack.activity(deleted_id) is None  # a report writes nothing

    repaired = cli(stack, "reconcile", "--source", "audit", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired=2" in repaired.stdout
    restored = stack.activity(deleted_id)
    assert restored is not None
    assert (restored["status"], restored["completionPercentage"]) == ("inProgress", 60)
    moved_back = stack.activity(edited_id)
    assert moved_back is not None
    assert moved_back["completionPercentage"] == 40
    assert stack.activity(untouched["externalcourseActivityId"]) == untouched

    clean = cli(stack, "reconcile", "--source", "audit", "--json")
    assert clean.returncode == 0, clean.stdout
    assert json.loads(clean.stdout)["drift"] == []


def test_unreachable_graph_is_one_line_and_exit_2(stack: Stack) -> None:
    event_id = send(stack)
    wait_for(partial(stack.activity_of, "audit", event_id), what="a record to read back")
    result = cli(stack, "reconcile", env={"BRIDGE_GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0"})
    assert (result.returncode, result.stderr.count("\n")) == (2, 1), result.stderr
    assert "Graph could not be reached" in result.stderr


def test_records_are_read_back_in_batches_and_a_throttled_read_alone_goes_again(stack: Stack) -> None:
    cli(stack, "reconcile", "--source", "audit", "--repair")  # earlier runs' drift out of the way
    events = [send(stack, externalCourseActivityId=f"rc-{uuid.uuid4()}") for _ in range(3)]
    records = [wait_for(partial(stack.activity_of, "audit", e), what="applied") for e in events]
    throttled = records[1]["externalcourseActivityId"]
    log_url = f"{stack.sandbox}/_sandbox/requests"
    before = max((e["batch"] or 0 for e in httpx.get(log_url, timeout=10).json()["value"]), default=0)
    fault = {"status": 429, "retryAfterSeconds": 1, "method": "GET", "pathContains": throttled}
    stack.faults(failNext=[fault])

    result = cli(stack, "reconcile", "--source", "audit", "--json", "--rate", "100")

    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["drift"] == []
    log = [
        e
        for e in httpx.get(log_url, timeout=10).json()["value"]
        if e["client"] == "bridge" and (e["batch"] or 0) > before
    ]
    batches = [e for e in log if e["kind"] == "batch"]
    reads = [e for e in log if e["kind"] == "activityByExternalId"]
    assert batches
    assert all(e["status"] == 200 for e in batches)
    assert reads
    assert all(e["batch"] is not None for e in reads)  # no read went alone
    mine = {
        r["externalcourseActivityId"]: [e for e in reads if r["externalcourseActivityId"] in e["path"]]
        for r in records
    }
    first, again = mine[throttled]
    assert (first["status"], first["injected"], again["status"]) == (429, True, 200)
    assert again["batch"] > first["batch"]
    for external_id, entries in mine.items():
        if external_id != throttled:  # answered in the throttled read's batch, and not read again
            assert [(e["status"], e["batch"]) for e in entries] == [(200, first["batch"])]


ASSIGNMENT = "#microsoft.graph.learningAssignment"


def test_an_assignment_s_due_date_and_notes_edited_in_graph_are_drift_then_repaired(stack: Stack) -> None:
    """Issue 18: reconcile compares the assignment fields Graph shows (type, assigned and due dates,
    notes, assigner) like the progress. Graph lets a PATCH move the due date and the notes (the
    Update page), so someone can; repair PATCHes them back."""
    cli(stack, "reconcile", "--source", "audit", "--repair")
    assignment = {"type": "required", "dueAt": "2026-12-31T17:00:00Z", "notes": "Before the audit."}
    event_id = send(
        stack,
        status="notStarted",
        completionPercentage=None,
        externalCourseActivityId=f"rc-{uuid.uuid4()}",
        assignment=assignment,
    )
    written = wait_for(partial(stack.activity_of, "audit", event_id), what="applied")
    assert written["@odata.type"] == ASSIGNMENT
    body = {
        "@odata.type": ASSIGNMENT,
        "status": "notStarted",
        "dueDateTime": {"dateTime": "2027-03-31T17:00:00.0000000", "timeZone": "UTC"},
        "notes": {"contentType": "text", "content": "Whenever."},
    }
    httpx.patch(f"{stack.activities_url}/{written['id']}", json=body, timeout=10).raise_for_status()

    found = cli(stack, "reconcile", "--source", "audit", "--json")
    assert found.returncode == 1, found.stderr
    drift = {d["activityId"]: d for d in json.loads(found.stdout)["drift"]}
    mine = drift[written["externalcourseActivityId"]]
    assert (mine["kind"], mine["fields"]) == ("changed", ["dueDateTime", "notes"])

    repaired = cli(stack, "reconcile", "--source", "audit", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    back = stack.activity(written["externalcourseActivityId"])
    assert back is not None
    assert (back["id"], back["dueDateTime"], back["notes"]) == (
        written["id"],
        written["dueDateTime"],
        written["notes"],
    )
    assert json.loads(cli(stack, "reconcile", "--source", "audit", "--json").stdout)["drift"] == []
