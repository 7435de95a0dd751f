"""Importing history: files read a line at a time, invalid lines named, paced sends to the queue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config.settings import SourceSettings
from shared.events.queue import EVENTS_QUEUE, QueuedEvent
from shared.operations.catalog import CatalogFileError
from shared.operations.importing import Importer, ImportSummary, read_items
from shared.sources.registry import build_source
from tests.builders import event
from tests.fakes import FakeQueue

GENERIC = build_source(SourceSettings(name="lms", format="generic", options={}), offline=True)
HEADER = "eventId,occurredAt,learnerEmail,courseId,courseTitle,status,completionPercentage\n"


def run(path: Path, queue: FakeQueue | None, rate: float = 1000.0) -> ImportSummary:
    summary = ImportSummary()
    Importer(queue, rate, sleep=lambda _: None).run(read_items(path, GENERIC), summary, lambda: None)
    return summary


def test_csv_rows_become_canonical_events_and_bad_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        HEADER
        + "e1,2025-03-01T10:00:00Z,ada.lovelace@contoso.example,course-101,Engines,inProgress,40\n"
        + "e2,2025-03-02T10:00:00Z,ada.lovelace@contoso.example,course-101,,completed,\n"
        + "e3,yesterday,ada.lovelace@contoso.example,course-101,,completed,\n"
        + "e4,2025-03-02T10:00:00Z,ada.lovelace@contoso.example,course-101,,notStarted,\n"
        + "e5,2025-03-02T10:00:00Z,,course-101,,inProgress,10\n",
        encoding="utf-8",
    )
    queue = FakeQueue()
    summary = run(path, queue)
    assert (summary.accepted, summary.ignored, summary.invalid) == (2, 1, 2)
    assert [p.where for p in summary.problems] == ["line 4", "line 6"]
    assert "occurredAt" in summary.problems[0].detail
    messages = [QueuedEvent.model_validate_json(m) for m in queue.sent[EVENTS_QUEUE]]
    first = messages[0].event
    assert first is not None
    assert (first.source, first.event_id, first.course.title, first.completion_percentage) == (
        "lms",
        "e1",
        "Engines",
        40,
    )


def test_json_lines_are_read_one_at_a_time_and_a_dry_run_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    lines = [json.dumps(event(eventId=f"e{i}")) for i in range(3)] + ["{not json", json.dumps([1])]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    summary = run(path, None)
    assert (summary.accepted, summary.invalid) == (3, 2)
    assert [p.where for p in summary.problems] == ["line 4", "line 5"]


def test_an_event_of_another_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps(event(source="other")) + "\n", encoding="utf-8")
    summary = run(path, FakeQueue())
    assert summary.invalid == 1
    assert "is not 'lms'" in summary.problems[0].detail


def test_a_body_in_the_source_s_own_format_is_parsed_as_its_webhook_would(tmp_path: Path) -> None:
    path = tmp_path / "body.json"
    path.write_text(json.dumps([event(eventId="a"), event(eventId="b")]), encoding="utf-8")
    queue = FakeQueue()
    assert run(path, queue).accepted == 2
    assert len(queue.sent[EVENTS_QUEUE]) == 2


def test_sends_are_paced_to_the_rate(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(json.dumps(event(eventId=f"e{i}")) for i in range(100)), encoding="utf-8")
    waits: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    summary = ImportSummary()
    Importer(FakeQueue(), 10.0, sleep=sleep, clock=lambda: now[0]).run(
        read_items(path, GENERIC), summary, lambda: None
    )
    # 100 events in batches of 32 at 10 a second: the last batch (events 97-100) goes at 9.6 s.
    assert now[0] == pytest.approx(9.6)


def test_an_unknown_file_kind_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "h.xml"
    path.write_text("<x/>", encoding="utf-8")
    with pytest.raises(CatalogFileError, match=r"\.csv, \.jsonl"):
        list(read_items(path, GENERIC))


ASSIGNED_HEADER = (
    "eventId,occurredAt,learnerEmail,courseId,status,assignmentType,dueDate,timeZone,assignmentNotes,"
    "assignerEmail,assignmentWithdrawn\n"
)


def test_csv_assignment_columns_become_the_events_assignment(tmp_path: Path) -> None:
    path = tmp_path / "assigned.csv"
    path.write_text(
        ASSIGNED_HEADER
        + "a1,2025-03-01T10:00:00Z,ada.lovelace@contoso.example,course-101,notStarted,required,2025-04-30,"
        + "Europe/Paris,Before the audit.,grace@contoso.example,\n"
        + "a2,2025-03-05T10:00:00Z,ada.lovelace@contoso.example,course-101,notStarted,,,,,,true\n"
        + "a3,2025-03-06T10:00:00Z,ada.lovelace@contoso.example,course-101,notStarted,mandatory,,,,,\n",
        encoding="utf-8",
    )
    queue = FakeQueue()
    summary = run(path, queue)
    assert (summary.accepted, summary.ignored, summary.invalid) == (2, 0, 1)  # notStarted kept with one
    assert "assignment.type" in summary.problems[0].detail
    assigned, withdrawn = [QueuedEvent.model_validate_json(m).event for m in queue.sent[EVENTS_QUEUE]]
    assert assigned is not None
    assert assigned.assignment is not None
    assert (assigned.assignment.type, assigned.assignment.time_zone, assigned.assignment.notes) == (
        "required",
        "Europe/Paris",
        "Before the audit.",
    )
    assert assigned.assignment.assigner is not None
    assert assigned.assignment.assigner.email == "grace@contoso.example"
    assert withdrawn is not None
    assert withdrawn.assignment is not None
    assert withdrawn.assignment.withdrawn


def test_an_assignment_is_an_invalid_line_while_assignments_are_disabled(tmp_path: Path) -> None:
    path = tmp_path / "assigned.jsonl"
    lines = [
        json.dumps(event(eventId="p1")),
        json.dumps(event(eventId="a1", assignment={"type": "required"})),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = ImportSummary()
    importer = Importer(None, 1000.0, sleep=lambda _: None, assignments_enabled=False)
    importer.run(read_items(path, GENERIC), summary, lambda: None)
    assert (summary.accepted, summary.invalid) == (1, 1)
    assert summary.problems[0].where == "line 2"
    assert "BRIDGE_ASSIGNMENTS_ENABLED" in summary.problems[0].detail


def test_a_vendor_body_from_an_assigning_source_imports_as_self_initiated_while_assignments_are_disabled(
    tmp_path: Path,
) -> None:
    """As the webhook: a 360Learning source with `assignments` states no assignment on a deployment
    without them (`for_deployment`, which `import` applies), so a path's completion is imported as
    a self-initiated completion, not refused."""
    from tests.builders import fixture

    source = build_source(
        SourceSettings(
            name="lms",
            format="360learning",
            options={"assignments": True, "learner": "account", "accountAttribute": "extension_lms_userId"},
        ),
        offline=True,
    )
    path = tmp_path / "path.json"
    path.write_bytes(fixture("360learning/path-status-updated.json").replace(b'"onTime"', b'"successful"'))
    queue = FakeQueue()
    summary = ImportSummary()
    importer = Importer(queue, 1000.0, sleep=lambda _: None, assignments_enabled=False)
    importer.run(read_items(path, source.for_deployment(assignments_enabled=False)), summary, lambda: None)
    assert (summary.accepted, summary.invalid) == (1, 0)
    [queued] = [QueuedEvent.model_validate_json(m).event for m in queue.sent[EVENTS_QUEUE]]
    assert queued is not None
    assert queued.assignment is None
    assert queued.status == "completed"
    assert getattr(source.options, "assignments")  # noqa: B009 (the configured source is untouched)


@pytest.mark.parametrize("cell", ["maybe", "t", "F", "withdrawn", "2"])
def test_an_assignment_withdrawn_cell_that_is_no_boolean_word_is_an_invalid_line_saying_so(
    tmp_path: Path, cell: str
) -> None:
    path = tmp_path / "withdrawn.csv"
    path.write_text(
        "eventId,occurredAt,learnerEmail,courseId,status,assignmentWithdrawn\n"
        f"w1,2026-11-20T14:03:00Z,ada.lovelace@contoso.example,course-101,inProgress,{cell}\n"
        "w2,2026-11-20T14:03:00Z,ada.lovelace@contoso.example,course-101,inProgress,NO\n"
        "w3,2026-11-20T14:03:00Z,ada.lovelace@contoso.example,course-101,inProgress,Yes\n",
        encoding="utf-8",
    )
    summary = run(path, FakeQueue())
    assert (summary.accepted, summary.invalid) == (2, 1)
    assert summary.problems[0].detail.startswith(f"assignmentWithdrawn: {cell!r} is neither true")
