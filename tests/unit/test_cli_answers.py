"""Issue 17: every command answers what the audit fed it as the README promises (exit 0/1 with a
summary, or exit 2 with one `error: ...` line), never with a traceback or a wrong answer. Each case
here was a crash or a wrong answer before; tests/unit/test_cli_totality.py checks the property itself
with arbitrary files and arguments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.graph.errors import GraphError
from shared.state.models import DeadLetterRecord, LetterState
from tests.builders import event
from tests.cli_harness import Backends, Outcome, fake_backends, run_cli, write_settings

CSV_HEADER = "eventId,occurredAt,learnerEmail,courseId,status,completionPercentage\n"
CATALOG_HEADER = "externalId,title,contentWebUrl,languageTag\n"
OVER_CSV_FIELD_LIMIT = "x" * (128 * 1024 + 1)


@pytest.fixture
def fakes() -> Iterator[Backends]:
    with fake_backends(Backends()) as installed:
        yield installed


def cli(tmp_path: Path, *argv: str) -> Outcome:
    return run_cli(["--settings", str(write_settings(tmp_path)), *argv])


def one_error_line(outcome: Outcome) -> str:
    assert outcome.code == 2, outcome
    assert "Traceback" not in outcome.err
    [line] = outcome.error_lines
    return line


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---- import -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("[" * 100_000 + "]" * 100_000, "the line nests deeper than 64 levels"),
        ('{"completionPercentage": ' + "1" * 5000 + "}", "the line is not valid JSON"),
    ],
    ids=["nested-100000-deep", "5000-digit-integer"],
)
def test_a_json_lines_line_the_webhook_would_answer_400_is_an_invalid_line(
    tmp_path: Path, fakes: Backends, line: str, says: str
) -> None:
    good = json.dumps(event(eventId="e-after"))
    path = write(tmp_path, "history.jsonl", line + "\n" + good + "\n")
    outcome = cli(tmp_path, "import", "--source", "generic", path)
    assert outcome.code == 1, outcome
    assert f"invalid line 1: {says}" in outcome.err
    assert "1 accepted" in outcome.out


def test_a_percentage_cell_that_is_a_digit_but_not_a_number_is_an_invalid_line(
    tmp_path: Path, fakes: Backends
) -> None:
    path = write(
        tmp_path,
        "history.csv",
        CSV_HEADER + "e1,2025-03-01T10:00:00Z,ada@contoso.example,course-101,inProgress,\u00b2\n",
    )
    outcome = cli(tmp_path, "import", "--source", "generic", path)
    assert outcome.code == 1, outcome
    assert "invalid line 2: completionPercentage" in outcome.err


def test_a_csv_cell_over_the_field_limit_refuses_the_rest_of_the_file_naming_the_line(
    tmp_path: Path, fakes: Backends
) -> None:
    path = write(
        tmp_path,
        "history.csv",
        CSV_HEADER
        + "e1,2025-03-01T10:00:00Z,ada@contoso.example,course-101,inProgress,10\n"
        + f"e2,2025-03-01T10:00:00Z,ada@contoso.example,{OVER_CSV_FIELD_LIMIT},inProgress,10\n",
    )
    line = one_error_line(cli(tmp_path, "import", "--source", "generic", path))
    assert "line 3" in line
    assert "131072" in line


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: Path, fakes: Backends) -> None:
    path = write(
        tmp_path,
        "history.csv",
        "eventId,occurredAt,learnerEmail,courseId,status,status\n"
        "e1,2025-03-01T10:00:00Z,ada@contoso.example,course-101,bogus,inProgress\n",
    )
    line = one_error_line(cli(tmp_path, "import", "--source", "generic", path))
    assert "'status' twice" in line
    assert not fakes.queue.sent


def test_an_invalid_multi_line_csv_record_is_named_by_its_first_line(tmp_path: Path, fakes: Backends) -> None:
    path = write(
        tmp_path,
        "history.csv",
        CSV_HEADER
        + "e1,2025-03-01T10:00:00Z,ada@contoso.example,course-101,inProgress,10\n"
        + '\ne2,2025-03-01T10:00:00Z,ada@contoso.example,"course\n101\nagain",bogus,\n'
        + "e3,2025-03-01T10:00:00Z,ada@contoso.example,course-101,bogus,10\n",
    )
    outcome = cli(tmp_path, "import", "--source", "generic", "--dry-run", path)
    assert outcome.code == 1, outcome
    assert [line.split(":")[0] for line in outcome.err.splitlines() if line.startswith("invalid")] == [
        "invalid line 4",
        "invalid line 7",
    ]


# ---- catalog push --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("catalog.json", "[" * 100_000 + "]" * 100_000, "nests deeper"),
        ("catalog.json", '[{"externalId": "a", "numberOfPages": ' + "1" * 5000 + "}]", "not valid JSON"),
        ("catalog.csv", CATALOG_HEADER + f"a,{OVER_CSV_FIELD_LIMIT},https://x.example/a,en-us\n", "line 2"),
    ],
    ids=["nested-100000-deep", "5000-digit-integer", "cell-over-the-csv-field-limit"],
)
def test_a_catalog_file_that_cannot_be_read_is_one_line_and_nothing_is_pushed(
    tmp_path: Path, fakes: Backends, name: str, text: str, says: str
) -> None:
    line = one_error_line(cli(tmp_path, "catalog", "push", write(tmp_path, name, text)))
    assert says in line
    assert fakes.graph.calls == []


def test_a_catalog_csv_header_naming_a_column_twice_is_refused(tmp_path: Path, fakes: Backends) -> None:
    path = write(
        tmp_path,
        "catalog.csv",
        "externalId,title,title,contentWebUrl,languageTag\na,A,B,https://x.example/a,en\n",
    )
    assert "'title' twice" in one_error_line(cli(tmp_path, "catalog", "push", path))
    assert fakes.graph.calls == []


def test_an_invalid_multi_line_catalog_entry_is_named_by_its_first_line(
    tmp_path: Path, fakes: Backends
) -> None:
    path = write(tmp_path, "catalog.csv", CATALOG_HEADER + 'a,"Two\nlines",not-a-url,en-us\n')
    outcome = cli(tmp_path, "catalog", "push", path)
    assert outcome.code == 1, outcome
    assert "invalid line 2: contentWebUrl" in outcome.err


# ---- deadletters, replay, send, compact ---------------------------------------------------------


def letter(message: str, reason: str = "invalidMessage") -> DeadLetterRecord:
    now = datetime.now(UTC)
    return DeadLetterRecord(
        source="unknown",
        event_id="msg-1",
        state=LetterState.DEADLETTERED,
        reason=reason,
        detail="Not a queued event: 1 errors.",
        message=message,
        attempts=1,
        first_failure=now,
        last_failure=now,
    )


def test_a_dead_letter_holding_truncated_json_is_shown_as_its_text(tmp_path: Path, fakes: Backends) -> None:
    fakes.store.letters[("unknown", "msg-1")] = letter('{"event": {"eventId": "e1", "lear')
    outcome = cli(tmp_path, "deadletters", "show", "unknown:msg-1")
    assert outcome.code == 0, outcome
    assert json.loads(outcome.out)["message"] == '{"event": {"eventId": "e1", "lear'


def test_replaying_an_id_that_is_not_a_dead_letter_exits_1_naming_it(tmp_path: Path, fakes: Backends) -> None:
    outcome = cli(tmp_path, "replay", "generic:no-such-event")
    assert outcome.code == 1, outcome
    assert "replayed 0 event(s)" in outcome.out
    assert "not found: generic:no-such-event" in outcome.err


def test_send_of_an_invalid_body_is_one_line_with_the_fields_and_posts_nothing(
    tmp_path: Path, fakes: Backends
) -> None:
    path = write(tmp_path, "bad.json", '{"eventId": "x", "status": "done"}')
    line = one_error_line(
        cli(tmp_path, "send", "--source", "generic", path, "--url", "http://127.0.0.1:9/api")
    )
    assert "/status" in line


def test_compact_refuses_a_period_longer_than_the_calendar(tmp_path: Path, fakes: Backends) -> None:
    line = one_error_line(cli(tmp_path, "compact", "--days", "1000000"))
    assert "--days" in line


# ---- found by tests/unit/test_cli_totality.py ----------------------------------------------------


def test_a_batch_graph_refuses_as_a_whole_during_catalog_push_is_one_line(
    tmp_path: Path, fakes: Backends
) -> None:
    fakes.graph.errors["batch"].append(GraphError(400, "BadRequest", "Invalid batch payload."))
    path = write(tmp_path, "catalog.csv", CATALOG_HEADER + "a,A,https://x.example/a,en-us\n")
    line = one_error_line(cli(tmp_path, "catalog", "push", path))
    assert "400 BadRequest" in line


def test_a_bad_argument_is_one_error_line_too(tmp_path: Path, fakes: Backends) -> None:
    outcome = cli(tmp_path, "compact", "--days", "ten")
    line = one_error_line(outcome)
    assert "--days" in line
    assert "usage:" not in outcome.err


@pytest.mark.parametrize("rate", ["1e-300", "nan", "0"])
def test_a_rate_that_is_no_pace_is_refused_before_anything_is_sent(
    tmp_path: Path, fakes: Backends, rate: str
) -> None:
    path = write(tmp_path, "history.jsonl", json.dumps(event(eventId="e1")) + "\n")
    line = one_error_line(cli(tmp_path, "import", "--source", "generic", path, "--rate", rate))
    assert "--rate" in line
    assert not fakes.queue.sent
    assert "--rate" in one_error_line(cli(tmp_path, "reconcile", "--rate", rate))


def test_an_unexpected_exception_is_one_line_naming_its_type_only(
    tmp_path: Path, fakes: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last-resort answer (every known cause is fixed where it arises; this is for the next one):
    the exception's type, never its text, which may quote personal data."""
    from shared.cli import operations

    def broken(_: object) -> int:
        raise LookupError("ada.lovelace@contoso.example")

    monkeypatch.setattr(operations, "retry_parked", broken)
    outcome = run_cli(["--settings", str(write_settings(tmp_path)), "retry-parked"], reraise=False)
    assert one_error_line(outcome) == "error: internal error (LookupError); please report it"
    assert "ada.lovelace" not in outcome.err


def test_translate_with_an_empty_source_name_says_no_source_has_it(tmp_path: Path, fakes: Backends) -> None:
    path = write(tmp_path, "body.json", json.dumps(event()))
    line = one_error_line(cli(tmp_path, "translate", "--source", "", path))
    assert "no source named ''" in line


@pytest.mark.parametrize(
    "text",
    ['{"Values": []}', '{"Values": "x"}', "[" * 100_000, '{"a": ' + "1" * 5000 + "}"],
    ids=["values-a-list", "values-a-string", "nested-100000-deep", "5000-digit-integer"],
)
def test_a_settings_file_that_cannot_be_read_is_one_line(tmp_path: Path, fakes: Backends, text: str) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(text, encoding="utf-8")
    line = one_error_line(run_cli(["--settings", str(settings), "status"]))
    assert str(settings) in line


def test_a_settings_path_that_is_a_directory_is_one_line(tmp_path: Path, fakes: Backends) -> None:
    assert "cannot read" in one_error_line(run_cli(["--settings", str(tmp_path), "status"]))


def test_send_to_a_url_holding_bytes_that_are_not_utf8_is_one_line(tmp_path: Path, fakes: Backends) -> None:
    # `--url $'\x80'` in a shell: Python hands the byte over as the surrogate escape \udc80 (PEP 383).
    path = write(tmp_path, "body.json", json.dumps(event()))
    line = one_error_line(cli(tmp_path, "send", "--source", "generic", path, "--url", "\udc80"))
    assert "--url" in line


@pytest.mark.parametrize("letter_id", ["generic:\udc80", "a/b:e1", "Generic#1:e1"])
def test_showing_an_id_no_dead_letter_can_have_says_so(
    tmp_path: Path, fakes: Backends, letter_id: str
) -> None:
    """An id storage cannot even look up (bytes that are not UTF-8, a source no source name can be)
    names no dead letter: it was a UnicodeEncodeError, or 'is storage running?'."""
    line = one_error_line(cli(tmp_path, "deadletters", "show", letter_id))
    assert line.startswith("error: no dead letter")


def test_compact_refuses_a_configured_period_longer_than_the_calendar(
    tmp_path: Path, fakes: Backends
) -> None:
    from tests.cli_harness import SETTINGS

    settings = write_settings(tmp_path, {**SETTINGS, "BRIDGE_RETENTION_DAYS": "1000000"})
    line = one_error_line(run_cli(["--settings", str(settings), "compact", "--dry-run"]))
    assert "BRIDGE_RETENTION_DAYS" in line


def test_ctrl_c_is_one_line_and_exit_130(
    tmp_path: Path, fakes: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.cli import operations

    def interrupted(_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(operations, "status", interrupted)
    outcome = cli(tmp_path, "status")
    assert (outcome.code, outcome.error_lines) == (130, ["error: interrupted"])
