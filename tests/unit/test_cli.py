"""`python -m shared.cli`: what an operator sees, exit codes included."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli.__main__ import main
from tests.builders import FIXTURES, TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("format_name", "fixture", "count"),
    [
        ("generic", ROOT / "samples/generic/progress-batch.json", 2),
        ("xapi", FIXTURES / "xapi/lrs-forwarding-envelope.json", 2),
        ("caliper", FIXTURES / "caliper/envelope-mixed.json", 3),
        ("thinkific", FIXTURES / "thinkific/enrollment-progress.json", 1),
        ("canvas", FIXTURES / "canvas/course-progress.json", 1),
        ("teachable", FIXTURES / "teachable/lecture-progress.json", 1),
        ("docebo", FIXTURES / "docebo/enrollment-completed-batch.json", 2),
        ("360learning", FIXTURES / "360learning/course-attempt-closed.json", 1),
        ("learnworlds", FIXTURES / "learnworlds/course-completed.json", 1),
    ],
)
def test_translate_prints_canonical_events_for_every_format(
    format_name: str, fixture: Path, count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--settings", "/nonexistent", "translate", "--format", format_name, str(fixture)]) == 0
    events = json.loads(capsys.readouterr().out)
    assert len(events) == count
    assert all({"eventId", "learner", "course", "status"} <= set(e) for e in events)


def test_ignored_items_are_explained_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["translate", "--format", "xapi", str(FIXTURES / "xapi/lrs-forwarding-envelope.json")]) == 0
    assert "verbNotProgress" in capsys.readouterr().err


def test_an_invalid_body_exits_2_with_the_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "bad.json"
    body.write_text('{"eventId": "x", "status": "done"}')
    assert main(["translate", "--format", "generic", str(body)]) == 2
    err = capsys.readouterr().err
    assert "/status" in err
    assert "/occurredAt" in err


def test_unknown_formats_and_sources_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["translate", "--format", "scorm", "x.json"]) == 2
    assert "known: 360learning, caliper" in capsys.readouterr().err
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {"BRIDGE_SOURCES": '{"lms": {"format": "generic"}}'}}))
    assert main(["--settings", str(settings), "translate", "--source", "nope", "x.json"]) == 2
    assert "configured: lms" in capsys.readouterr().err


def test_a_configured_source_translates_with_its_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "local.settings.json"
    sources = {"lrs": {"format": "xapi", "courseId": "lastSegment"}}
    settings.write_text(json.dumps({"Values": {"BRIDGE_SOURCES": json.dumps(sources)}}))
    fixture = str(FIXTURES / "xapi/cmi5-course-satisfied.json")
    assert main(["--settings", str(settings), "translate", "--source", "lrs", fixture]) == 0
    assert json.loads(capsys.readouterr().out)[0]["course"]["externalId"] == "course-101"


def test_a_missing_file_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["translate", "--format", "generic", "/no/such/file.json"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_send_refuses_a_source_without_its_secret(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {"BRIDGE_SOURCES": '{"generic": {"format": "generic"}}'}}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "--settings",
            str(settings),
            "send",
            "--source",
            "generic",
            str(ROOT / "samples/generic/course-completed.json"),
            "--url",
            "http://127.0.0.1:9/api",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "BRIDGE_SOURCE_GENERIC_SECRET" in result.stderr
    assert TEST_SECRET not in result.stderr
