"""`import` end to end: a CSV with valid, invalid and duplicate rows goes through the webhook's queue
into the sandbox; invalid lines are named; importing again changes nothing; a dry run sends nothing."""

from __future__ import annotations

import json
import uuid
from functools import partial
from pathlib import Path

from tests.builders import event
from tests.e2e.stack import Stack, cli, wait_for

HEADER = "eventId,occurredAt,learnerEmail,learnerUpn,courseId,status,completionPercentage,startedAt\n"
ADA = "ada.lovelace@contoso.example"
GRACE = "grace.hopper@contoso.example"


def seen_twice(stack: Stack, event_id: str) -> bool | None:
    delivery = stack.delivery("generic", event_id)
    return (delivery is not None and delivery.seen >= 2) or None


def test_a_history_file_is_imported_once_and_again_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [f"imp-{tag}-{n}" for n in range(3)]
    history = tmp_path / "history.csv"
    history.write_text(
        HEADER
        + f"{ids[0]},2025-02-01T09:00:00Z,{ADA},,course-101,inProgress,30,2025-02-01T08:00:00Z\n"
        + f"{ids[1]},2025-02-03T09:00:00Z,,{GRACE},course-202,completed,,\n"
        + f"imp-{tag}-bad,2025-02-03T09:00:00Z,{ADA},,course-101,halfway,,\n"
        + f"{ids[2]},2025-02-02T09:00:00Z,{ADA},,course-101,inProgress,55,\n"
        + f"{ids[0]},2025-02-01T09:00:00Z,{ADA},,course-101,inProgress,30,2025-02-01T08:00:00Z\n",
        encoding="utf-8",
    )
    first = cli(stack, "import", "--source", "generic", str(history), "--rate", "50")
    assert first.returncode == 1, first.stderr  # one invalid line
    assert "4 accepted (queued), 1 invalid, 0 ignored" in first.stdout
    assert "invalid line 4: status" in first.stderr
    for event_id in ids:
        wait_for(partial(stack.activity_of, "generic", event_id), what=f"{event_id} applied")
    # The duplicate line of ids[0] may be applied at the same moment as the first (two workers): both
    # find it unapplied and both write the same record, so its seen count can stay 1; what must hold is
    # one record per learner and course, checked below and by `activity_of`.
    ada = stack.activity_of("generic", ids[2])
    grace = stack.activity_of("generic", ids[1])
    assert ada is not None
    assert grace is not None
    assert (ada["completionPercentage"], ada["startedDateTime"][:19]) == (55, "2025-02-01T08:00:00")
    assert (grace["status"], grace["completionPercentage"]) == ("completed", 100)
    assert stack.activity_of("generic", ids[0])["id"] == ada["id"]  # type: ignore[index]

    again = cli(stack, "import", "--source", "generic", str(history), "--json")
    assert json.loads(again.stdout)["accepted"] == 4
    wait_for(partial(seen_twice, stack, ids[2]), what="the second import deduplicated")
    assert stack.activity_of("generic", ids[2]) == ada
    assert stack.activity_of("generic", ids[1]) == grace


def test_a_dry_run_validates_and_sends_nothing(stack: Stack, tmp_path: Path) -> None:
    event_id = f"imp-dry-{uuid.uuid4()}"
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps(event(eventId=event_id)) + "\n", encoding="utf-8")
    dry = cli(stack, "import", "--source", "generic", "--dry-run", str(history))
    assert dry.returncode == 0, dry.stderr
    assert "1 accepted (would queue)" in dry.stdout
    marker = f"imp-marker-{uuid.uuid4()}"
    stack.send(event(eventId=marker))
    wait_for(partial(stack.activity_of, "generic", marker), what="a later event applied")
    assert stack.delivery("generic", event_id) is None


def test_bad_files_and_sources_are_one_line_and_exit_2(stack: Stack, tmp_path: Path) -> None:
    missing = cli(stack, "import", "--source", "generic", str(tmp_path / "nope.csv"))
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1)
    unknown = cli(stack, "import", "--source", "nosuch", str(tmp_path / "nope.csv"))
    assert unknown.returncode == 2
    assert "no source named 'nosuch'" in unknown.stderr
