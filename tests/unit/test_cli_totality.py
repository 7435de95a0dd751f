"""Issue 17, as a property: every operator command, fed arbitrary files and arguments, answers with
one of the README's outcomes: exit 0 or 1 with a summary on stdout (and no `error:` line), or exit 2
with exactly one `error: ...` line on stderr; never a traceback, and never the last-resort
"internal error" line (which means a cause went unfixed).

Each command runs in process (`main(argv)`, tests/cli_harness.py) with the unit fakes behind
`shared.cli.backends`: a state store seeded with records, parked events and dead letters whose messages
are anything (truncated, nested, not JSON); a Graph fake that now and then throttles or refuses; now and
then storage or the queue down. `send`'s HTTP post is answered by a stand-in that checks the URL as
httpx would. Files are drawn from the formats each command reads (CSV, JSON Lines, JSON, the samples
mutated) with the audit's hostile cases among them (100,000 nested brackets, 5,000-digit integers, a
cell over the csv module's 128 KiB limit, a header naming a column twice, `²`), and raw bytes.

`make test` runs EXAMPLES per command (HYPOTHESIS_EXAMPLES raises it; the README has a big run)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.config.settings import SourceSettings
from shared.delivery import CourseActivityUpserter, PermanentFailure
from shared.events.model import CanonicalEvent
from shared.events.queue import QueuedEvent
from shared.graph.errors import GraphError, GraphUnavailable
from shared.graph.msgraph_gateway import ProviderRecord
from shared.sources.base import Delivery
from shared.sources.exceptions import InvalidPayload
from shared.sources.registry import build_source
from shared.state.models import DeadLetterRecord, DeliveryRecord, LetterState
from tests.builders import USER_ID, canonical
from tests.builders import event as wire_event
from tests.cli_harness import (
    PROVIDER,
    SETTINGS,
    Backends,
    Outcome,
    TokenCredential,
    fake_backends,
    run_cli,
    write_settings,
)
from tests.fuzzing import bodies, json_values, mutated

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "100"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
ROOT = Path(__file__).resolve().parents[2]
GRACE_ID = "7e2d9b4c-3a1f-4c8e-b6d2-0f9e8d7c6b5a"
GENERIC = build_source(SourceSettings(name="generic", format="generic", options={}), offline=True)


def check(outcome: Outcome) -> None:
    """The README's promise, and nothing that says a cause was left to the last-resort handler."""
    event(f"exit {outcome.code}")
    if outcome.code == 2 and outcome.error_lines:
        event(re.sub(r"/tmp/\S+", "FILE", outcome.error_lines[0])[:60])
    assert "Traceback" not in outcome.err, outcome
    assert "internal error" not in outcome.err, outcome
    if outcome.code == 2:
        assert len(outcome.error_lines) == 1, outcome
    else:
        assert outcome.code in (0, 1), outcome
        assert outcome.error_lines == [], outcome
        assert outcome.out.strip(), outcome


# ---- arguments ----------------------------------------------------------------------------------


def mostly(
    usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int = 6
) -> st.SearchStrategy[Any]:
    """`usual`, and `rare` about one time in `one_in`: deep paths are reached, hostile values still
    come. (The rare branch is a middle value: hypothesis favours the ends of a range.)"""
    return st.integers(0, one_in - 1).flatmap(lambda n: rare if n == one_in // 2 else usual)


# What a shell can pass: no NUL; bytes that are not UTF-8 arrive as surrogate escapes (PEP 383).
ARG_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30),
    st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape").replace("\x00", "")),
)
HOSTILE_NUMBERS = st.one_of(
    st.floats().map(repr),
    st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e308", "1e-300", "0.001", "1" * 5000, "1_0"]),
    ARG_TEXT,
)
RATES = mostly(st.sampled_from(["0.01", "1", "5", "20", "1000", "1e9"]), HOSTILE_NUMBERS)
DAYS = mostly(st.sampled_from(["0", "1", "30", "400", "36500"]), HOSTILE_NUMBERS | st.just("1000000"))
WAITS = mostly(st.sampled_from(["0.001", "0.5", "2"]), HOSTILE_NUMBERS)
SOURCES = mostly(st.just("generic"), st.sampled_from(["lrs", "nosuch", ""]) | ARG_TEXT)
IDS = mostly(
    st.sampled_from(["generic:a3", "unknown:msg-0", "unknown:msg-1", "generic:nope"]),
    st.sampled_from(["generic:", ":", "no-colon"]) | ARG_TEXT,
)


def flags(*names: str) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(names), unique=True).map(list)


def option(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str] | None]:
    return st.none() | values.map(lambda value: [name, value])


def joined(*parts: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """The parts' values as one argv (a part may be one argument, a list of them, or None)."""

    def flatten(drawn: tuple[Any, ...]) -> list[Any]:
        argv: list[Any] = []
        for part in drawn:
            argv += [part] if isinstance(part, str) or callable(part) else (part or [])
        return argv

    return st.tuples(*parts).map(flatten)


# ---- files --------------------------------------------------------------------------------------

HOSTILE_CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "\u00b2",
            "1" * 5000,
            "-1",
            '"quoted, with\nline breaks"',
            '"unclosed',
            "x" * (128 * 1024 + 1),
            "\ufeff",
        ]
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20),
)
IMPORT_COLUMNS = {
    "eventId": ["e1", "e2", "e3", "a1"],
    "occurredAt": ["2025-03-01T10:00:00Z", "2026-11-20T14:03:00+01:00", "yesterday"],
    "learnerEmail": ["ada.lovelace@contoso.example", "grace@contoso.example", "nobody@contoso.example"],
    "learnerUpn": ["ada.lovelace@contoso.example"],
    "learnerUserId": [USER_ID],
    "learnerAccountHomePage": ["https://lms.contoso.example"],
    "learnerAccountName": ["ada"],
    "courseId": ["course-101", "course-202"],
    "courseTitle": ["Engines", ""],
    "courseUrl": ["https://lms.contoso.example/c/101"],
    "status": ["inProgress", "completed", "notStarted", "done"],
    "completionPercentage": ["", "0", "40", "100", "101"],
    "startedAt": ["", "2025-02-01T08:00:00Z"],
    "completedAt": ["", "2025-02-03T16:20:00Z"],
    "externalCourseActivityId": ["", "imp-1"],
}
CATALOG_COLUMNS = {
    "externalId": ["course-301", "course-302", "course-301"],
    "title": ["Difference Engines", ""],
    "contentWebUrl": ["https://academy.contoso.example/courses/301", "not-a-url"],
    "languageTag": ["en-us", "fr-fr", "english"],
    "format": ["Course", "Book"],
    "duration": ["PT1H30M", "90 minutes", ""],
    "level": ["beginner", "expert"],
    "numberOfPages": ["", "12", "-3"],
    "skillTags": ["mathematics; engineering", ";;"],
    "isActive": ["true", "maybe"],
    "createdDateTime": ["2025-01-01T00:00:00Z", "2025-01-01"],
}


@st.composite
def csv_text(draw: st.DrawFn, columns: dict[str, list[str]], required: str) -> str:
    names = list(columns)
    header = [required, *draw(st.lists(st.sampled_from(names[1:]), max_size=8, unique=True))]
    header = draw(mostly(st.permutations(header).map(list), st.just([*header, draw(st.sampled_from(names))])))
    if draw(st.integers(0, 9)) == 5:
        header.append(draw(st.text(st.characters(codec="utf-8"), max_size=8)))
    cell = {name: mostly(st.sampled_from(columns.get(name, [""])), HOSTILE_CELLS) for name in header}
    rows = draw(st.lists(st.tuples(*(cell[name] for name in header)).map(list), max_size=5))
    for row in rows:
        if draw(st.integers(0, 9)) == 5:
            row.append(draw(HOSTILE_CELLS))
    newline = draw(st.sampled_from(["\n", "\r\n", "\n", "\r"]))
    lines = [",".join(line) for line in [header, *rows]]
    if draw(st.integers(0, 5)) == 3:
        lines.insert(draw(st.integers(1, len(lines))), "")
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


SPECIAL_TEXT = st.sampled_from(
    [
        "[" * 100_000 + "]" * 100_000,
        '{"completionPercentage": ' + "1" * 5000 + "}",
        '{"a": NaN}',
        '["\\ud800"]',
        "{not json",
        "",
    ]
)


@st.composite
def jsonl_text(draw: st.DrawFn) -> str:
    def line() -> str:
        usual = st.builds(
            lambda n, status: json.dumps(wire_event(eventId=f"j{n}", status=status)),
            st.integers(0, 5),
            st.sampled_from(["inProgress", "completed", "notStarted"]),
        )
        rare = st.one_of(
            mutated("generic").map(lambda d: json.dumps(d, ensure_ascii=True)),
            json_values().map(lambda d: json.dumps(d, ensure_ascii=True)),
            SPECIAL_TEXT,
        )
        return str(draw(mostly(usual, rare, one_in=3)))

    return "\n".join(line() for _ in range(draw(st.integers(0, 5))))


@st.composite
def catalog_json(draw: st.DrawFn) -> str:
    items: list[Any] = json.loads((ROOT / "samples/catalog/catalog.json").read_text(encoding="utf-8"))
    document: Any = copy.deepcopy(items)
    if draw(st.booleans()):
        document.append(draw(json_values()))
    if draw(st.booleans()):
        document = {"value": document}
    return json.dumps(document, ensure_ascii=True)


def _text_file(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return text.map(lambda t: t.encode("utf-8"))


HOSTILE_FILES = st.one_of(
    SPECIAL_TEXT.map(lambda t: t.encode("utf-8")),
    st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe\x00a", b"a,b\n\xff\n"]),
    st.binary(max_size=300),
)
#: Each command's files, by the suffix they usually have (and now and then another, or bytes).
IMPORT_FILES = {
    ".csv": _text_file(csv_text(IMPORT_COLUMNS, "eventId")),
    ".jsonl": _text_file(jsonl_text()),
    ".json": bodies("generic"),
}
CATALOG_FILES = {
    ".csv": _text_file(csv_text(CATALOG_COLUMNS, "externalId")),
    ".json": _text_file(catalog_json()),
}
VALID_BODIES = st.sampled_from([p.read_bytes() for p in sorted((ROOT / "samples/generic").glob("*.json"))])
BODY_FILES = {".json": mostly(VALID_BODIES, bodies("generic"), one_in=2), ".xapi.json": bodies("xapi")}
OTHER_SUFFIXES = st.sampled_from([".csv", ".jsonl", ".ndjson", ".json", ".JSON", ".txt", ""])


@st.composite
def files(draw: st.DrawFn, kinds: dict[str, st.SearchStrategy[bytes]]) -> Callable[[Path], str]:
    """A file to write in the example's directory, and its path (now and then: a missing path, the
    directory itself, stdin, another suffix, hostile bytes)."""
    where = draw(mostly(st.just("file"), st.sampled_from(["missing", "directory", "stdin"]), one_in=10))
    suffix = draw(st.sampled_from(sorted(kinds)))
    content = draw(mostly(kinds[suffix], HOSTILE_FILES, one_in=8))
    suffix = draw(mostly(st.just(suffix), OTHER_SUFFIXES, one_in=10))

    def make(directory: Path) -> str:
        if where == "missing":
            return str(directory / f"missing{suffix}")
        if where == "directory":
            return str(directory)
        if where == "stdin":
            return "-"
        path = directory / f"input{suffix}"
        path.write_bytes(content)
        return str(path)

    return make


# ---- the world behind the commands --------------------------------------------------------------

LETTER_MESSAGES = st.one_of(
    st.sampled_from(
        [
            '{"event": {"eventId": "e1", "lear',
            "[" * 5000 + "]" * 5000,
            '{"a": ' + "9" * 5000 + "}",
            "not json at all",
            "",
            '{"event": "\\ud800"}',
        ]
    ),
    json_values().map(lambda value: json.dumps(value, ensure_ascii=True)),
)
_GRAPH_ERRORS: list[Callable[[], Exception]] = [
    lambda: GraphError(429, "TooManyRequests", "slow", retry_after=0),
    lambda: GraphError(429, "TooManyRequests", "slow", retry_after=10**9),
    lambda: GraphError(503, "ServiceUnavailable", "busy"),
    lambda: GraphError(500, "InternalServerError", "oops"),
    lambda: GraphError(400, "BadRequest", "no"),
    lambda: GraphError(404, "NotFound", "gone"),
    lambda: GraphError(401, "InvalidAuthenticationToken", "who"),
    lambda: GraphError(403, "Forbidden", "Insufficient privileges"),
    lambda: GraphUnavailable("connection refused"),
]
GRAPH_ERRORS = st.sampled_from(_GRAPH_ERRORS).map(lambda make: make())
GRAPH_METHODS = [
    "get_activity",
    "find_content_id",
    "put_content",
    "delete_activity",
    "find_user_id_by_upn",
    "find_user_id_by:mail",
    "batch",
    "first_content_id",
    "create_activity",
]


@st.composite
def worlds(draw: st.DrawFn) -> Backends:
    fakes = Backends()
    asyncio.run(_seed(fakes, draw(st.lists(LETTER_MESSAGES, max_size=3))))
    _tamper(fakes, draw(st.sampled_from(["none", "none", "deleted", "changed", "foreign"])))
    for method in draw(mostly(st.just([]), st.lists(st.sampled_from(GRAPH_METHODS), max_size=3), one_in=2)):
        fakes.graph.errors[method].extend(draw(st.lists(GRAPH_ERRORS, max_size=6)))
    fakes.storage_down = draw(mostly(st.just(False), st.just(True), one_in=10))
    fakes.queue.fail = draw(mostly(st.just(False), st.just(True), one_in=10))
    return fakes


async def _seed(fakes: Backends, messages: list[str]) -> None:
    """Ada's and Grace's records; an event parked for an unknown course; letters holding anything."""
    graph, store = fakes.graph, fakes.store
    graph.users_by_mail.update({"ada.lovelace@contoso.example": USER_ID, "grace@contoso.example": GRACE_ID})
    graph.contents.update({"course-101": "c-101", "course-202": "c-202"})
    upserter = CourseActivityUpserter(graph, store)
    await upserter.apply(canonical(eventId="a1"))
    await upserter.apply(canonical(eventId="a2", course={"externalId": "course-202"}))
    await upserter.apply(canonical(eventId="g1", learner={"email": "grace@contoso.example"}))
    parked = canonical(eventId="a3", course={"externalId": "course-unknown"})
    try:
        await upserter.apply(parked)
    except PermanentFailure as failure:
        await store.save_dead_letter(
            _letter("generic", "a3", _queued(parked), failure.reason, LetterState.PARKED)
        )
    for n, message in enumerate(messages):
        await store.save_dead_letter(_letter("unknown", f"msg-{n}", message, "invalidMessage"))
    store.written = {key: when - timedelta(days=500) for key, when in store.written.items()}


def _tamper(fakes: Backends, how: str) -> None:
    """Drift behind the bridge's back, for reconcile (and forget) to meet: Ada's first record deleted,
    moved backwards, or handed to Grace."""
    records = fakes.graph.activities
    mine = next((k for k, r in records.items() if r.learner_user_id == USER_ID), None)
    if mine is None or how == "none":
        return
    if how == "deleted":
        del records[mine]
    elif how == "changed":
        records[mine] = replace(records[mine], completion_percentage=5)
    else:
        records[mine] = replace(records[mine], learner_user_id=GRACE_ID)


def _queued(body: CanonicalEvent) -> str:
    return QueuedEvent(event=body, received_at=datetime.now(UTC)).model_dump_json(by_alias=True)


def _letter(
    source: str, event_id: str, message: str, reason: str, state: LetterState = LetterState.DEADLETTERED
) -> DeadLetterRecord:
    now = datetime.now(UTC)
    return DeadLetterRecord(
        source=source,
        event_id=event_id,
        state=state,
        reason=reason,
        detail="x",
        message=message,
        attempts=1,
        first_failure=now,
        last_failure=now,
        next_attempt=now if state is LetterState.PARKED else None,
    )


@contextlib.contextmanager
def bridge_over_http(fakes: Backends, status: int) -> Iterator[None]:
    """`send` posts to this stand-in: it builds the request as httpx would (a URL it cannot post to
    raises as the real call does), answers `status`, and on success marks the body's events applied,
    as the bridge would, for `--wait` to find."""
    real_request = httpx.Request

    def post(url: str, *, content: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
        request = real_request("POST", url, content=content, headers=headers)
        if status < 300:
            asyncio.run(_apply(fakes, content))
        return httpx.Response(status, json={"status": status}, request=request)

    def get(url: str, *, timeout: float) -> httpx.Response:
        return httpx.Response(404, json={}, request=real_request("GET", url))

    with mock.patch.object(httpx, "post", post), mock.patch.object(httpx, "get", get):
        yield


async def _apply(fakes: Backends, body: bytes) -> None:
    try:
        events = GENERIC.read(Delivery("generic", body, {}, datetime.now(UTC))).events
    except InvalidPayload:
        return
    for item in events:
        await fakes.store.save_delivery(DeliveryRecord(item.source, item.event_id, "a-1", "applied"))


def run_in_world(
    fakes: Backends, argv: list[str], *, settings_bytes: bytes | None = None, status: int = 202
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        settings_file = write_settings(folder)
        if settings_bytes is not None:
            settings_file.write_bytes(settings_bytes)
        resolved = [item(folder) if callable(item) else item for item in argv]
        with fake_backends(fakes), bridge_over_http(fakes, status):
            outcome = run_cli(["--settings", str(settings_file), *resolved])
    check(outcome)


# ---- one property per command -------------------------------------------------------------------


@PROPERTY
@given(
    fakes=worlds(),
    argv=joined(
        st.just("translate"),
        mostly(
            st.sampled_from([["--format", "generic"], ["--source", "generic"], ["--source", "lrs"]]),
            st.tuples(st.sampled_from(["--source", "--format"]), ARG_TEXT | st.just("caliper")).map(list),
        ),
        files(BODY_FILES),
    ),
)
def test_translate_is_total(fakes: Backends, argv: list[Any]) -> None:
    run_in_world(fakes, argv)


@PROPERTY
@given(
    fakes=worlds(),
    argv=joined(
        st.just("send"),
        st.just("--source"),
        SOURCES,
        files(BODY_FILES),
        option(
            "--url",
            mostly(
                st.just("http://127.0.0.1:7071/api"),
                st.sampled_from(["ftp://x", "http://[::1", ""]) | ARG_TEXT,
            ),
        ),
        option("--wait", WAITS),
    ),
    status=st.sampled_from([202, 202, 400, 500]),
)
def test_send_is_total(fakes: Backends, argv: list[Any], status: int) -> None:
    run_in_world(fakes, argv, status=status)


@PROPERTY
@given(
    fakes=worlds(),
    argv=joined(
        st.just("import"),
        st.just("--source"),
        SOURCES,
        st.lists(files(IMPORT_FILES), min_size=1, max_size=2),
        flags("--dry-run", "--json"),
        option("--rate", RATES),
    ),
)
def test_import_is_total(fakes: Backends, argv: list[Any]) -> None:
    run_in_world(fakes, argv)


@PROPERTY
@given(
    fakes=worlds(), argv=joined(st.just("catalog"), st.just("push"), files(CATALOG_FILES), flags("--json"))
)
def test_catalog_push_is_total(fakes: Backends, argv: list[Any]) -> None:
    run_in_world(fakes, argv)


#: `--learner KIND VALUE`, as trace and forget take it: mostly the kinds and learners the worlds know.
LEARNER_ARGS = (
    st.just("--learner"),
    mostly(st.sampled_from(["email", "upn", "userId"]), st.just("phone") | ARG_TEXT),
    mostly(
        st.sampled_from(["ada.lovelace@contoso.example", USER_ID, GRACE_ID, "nobody@contoso.example"]),
        ARG_TEXT,
    ),
)


@PROPERTY
@given(
    fakes=worlds(),
    argv=joined(
        st.just("trace"),
        *LEARNER_ARGS,
        option("--course", ARG_TEXT),
        option("--source", SOURCES),
        flags("--json"),
    ),
)
def test_trace_is_total(fakes: Backends, argv: list[Any]) -> None:
    run_in_world(fakes, argv)


@PROPERTY
@given(
    fakes=worlds(),
    argv=joined(
        st.just("forget"),
        *LEARNER_ARGS,
        flags("--yes", "--json"),
    ),
)
def test_forget_is_total(fakes: Backends, argv: list[Any]) -> None:
    run_in_world(fakes, argv)


@PROPERTY
@given(
    fakes=worlds(),
    argv=joined(
        st.just("reconcile"),
        option("--source", SOURCES),
        flags("--repair", "--json"),
        option("--rate", RATES),
    ),
)
def test_reconcile_is_total(fakes: Backends, argv: list[Any]) -> None:
    run_in_world(fakes, argv)


@PROPERTY
@given(
    fakes=worlds(),
    argv=st.one_of(
        joined(st.just("status"), flags("--totals")),
        joined(st.just("compact"), option("--days", DAYS), flags("--dry-run", "--sizes", "--json")),
        joined(
            st.just("deadletters"),
            st.just("list"),
            option("--source", SOURCES),
            option("--reason", mostly(st.sampled_from(["invalidMessage", "contentNotFound"]), ARG_TEXT)),
            option("--state", mostly(st.sampled_from(["parked", "deadlettered", "replayed"]), ARG_TEXT)),
        ),
        joined(st.just("deadletters"), st.just("show"), IDS),
        joined(
            st.just("replay"),
            st.lists(IDS, max_size=3),
            flags("--all"),
            option("--source", SOURCES),
            option("--reason", ARG_TEXT),
        ),
        joined(
            st.just("retry-parked"),
            flags("--now"),
            option("--reason", mostly(st.sampled_from(["learnerNotLicensed", "learnerNotFound"]), ARG_TEXT)),
        ),
    ),
)
def test_storage_commands_are_total(fakes: Backends, argv: list[str]) -> None:
    run_in_world(fakes, argv)


# ---- provider and doctor: the operator's sign-in, the app's identity, logos, azd -------------------

_SIGN_IN_FAILURES: list[Callable[[], Exception]] = [
    lambda: ClientAuthenticationError("AADSTS70016: the device code expired"),
    lambda: CredentialUnavailableError("no browser"),
    lambda: ValueError("bad tenant"),
]
#: Claims an access token may carry, right, wrong, or not claims at all.
CLAIMS = st.one_of(
    st.just(
        {"roles": ["LearningSelfInitiatedCourse.ReadWrite.All", "User.Read.All", "LearningContent.Read.All"]}
    ),
    st.just({"scp": "LearningProvider.ReadWrite"}),
    st.fixed_dictionaries({"roles": json_values()}),
    st.fixed_dictionaries({"scp": json_values()}),
    st.dictionaries(ARG_TEXT, json_values(), max_size=3),
)
LOGO_ANSWERS = st.one_of(
    st.sampled_from([200, 204, 301, 403, 404, 500]),
    st.sampled_from([httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.InvalidURL("bad")]),
)
LOGO_URLS = mostly(
    st.sampled_from([f"https://cdn.contoso.example/logo-{n}.png" for n in range(4)]),
    st.sampled_from(
        ["http://cdn.contoso.example/a.png", "https://127.0.0.1/a.png", "https://[::1]/a", "https://[x/a", ""]
    )
    | ARG_TEXT.map(lambda text: f"https://{text}"),
)


@st.composite
def operator_worlds(draw: st.DrawFn) -> Backends:
    fakes = draw(worlds())
    fakes.operator = TokenCredential(
        draw(CLAIMS), draw(mostly(st.none(), st.sampled_from(_SIGN_IN_FAILURES).map(lambda make: make())))
    )
    fakes.identity = TokenCredential(
        draw(CLAIMS), draw(mostly(st.none(), st.sampled_from(_SIGN_IN_FAILURES).map(lambda make: make())))
    )
    if draw(st.booleans()):
        fakes.providers.records[PROVIDER] = ProviderRecord(
            PROVIDER, draw(ARG_TEXT), draw(st.booleans()), None, {}
        )
    fakes.providers.errors.extend(draw(mostly(st.just([]), st.lists(GRAPH_ERRORS, max_size=2), one_in=3)))
    fakes.logo_answer = draw(mostly(st.just(200), LOGO_ANSWERS))
    fakes.azd = draw(st.sampled_from([None, "/usr/bin/azd"]))
    fakes.azd_status = draw(st.sampled_from([0, 1]))
    fakes.graph.users_by_upn.update({"canary@contoso.example": USER_ID})
    return fakes


@PROPERTY
@given(
    fakes=operator_worlds(),
    argv=st.one_of(
        joined(
            st.just("provider"),
            st.just("register"),
            option("--name", mostly(st.just("Contoso"), ARG_TEXT)),
            mostly(
                st.lists(LOGO_URLS, min_size=4, max_size=4).map(lambda urls: ["--logos", *urls]),
                st.lists(LOGO_URLS, max_size=5).map(lambda urls: ["--logos", *urls]),
            ),
            option("--login-url", LOGO_URLS),
            flags("--json", "--browser"),
        ),
        joined(
            st.just("provider"),
            st.sampled_from(["show", "enable-sync", "disable-sync"]),
            option("--id", mostly(st.just(PROVIDER), ARG_TEXT)),
            option("--tenant", ARG_TEXT),
            flags("--json", "--browser"),
        ),
        joined(
            st.just("doctor"),
            option(
                "--canary",
                mostly(st.sampled_from(["canary@contoso.example", "nobody@contoso.example"]), ARG_TEXT),
            ),
            option("--course", mostly(st.sampled_from(["course-101", "course-unknown"]), ARG_TEXT)),
            flags("--sign-in", "--browser", "--json"),
        ),
    ),
    values=st.sampled_from(["local", "managedIdentity", "no secret"]),
)
def test_provider_and_doctor_are_total(fakes: Backends, argv: list[Any], values: str) -> None:
    settings = dict(SETTINGS)
    if values == "managedIdentity":
        del settings["BRIDGE_GRAPH_AUTH"], settings["BRIDGE_GRAPH_BASE_URL"]
    elif values == "no secret":
        del settings["BRIDGE_SOURCE_LRS_SECRET"]
    run_in_world(fakes, argv, settings_bytes=json.dumps({"Values": settings}).encode())


VOCABULARY = st.sampled_from(
    [
        "translate",
        "send",
        "status",
        "compact",
        "deadletters",
        "list",
        "show",
        "replay",
        "catalog",
        "push",
        "import",
        "forget",
        "reconcile",
        "retry-parked",
        "trace",
        "provider",
        "register",
        "enable-sync",
        "disable-sync",
        "doctor",
        "--canary",
        "--logos",
        "--name",
        "--sign-in",
        "--now",
        "--course",
        "--source",
        "--format",
        "--days",
        "--rate",
        "--learner",
        "--yes",
        "--json",
        "--all",
        "--help",
        "--settings",
        "--wait",
        "--url",
        "-",
        "--",
    ]
)


@PROPERTY
@given(
    fakes=worlds(),
    argv=st.lists(VOCABULARY | ARG_TEXT | HOSTILE_NUMBERS, max_size=7),
    settings_bytes=st.none()
    | st.sampled_from(
        [b"", b"{", b"[]", b'{"Values": []}', b'{"Values": {"BRIDGE_SOURCES": "["}}', b"\xff", b"[" * 100_000]
    )
    | st.binary(max_size=60)
    | json_values().map(lambda v: json.dumps({"Values": v}, ensure_ascii=True).encode()),
)
def test_any_arguments_and_settings_file_get_a_documented_answer(
    fakes: Backends, argv: list[str], settings_bytes: bytes | None
) -> None:
    run_in_world(fakes, argv, settings_bytes=settings_bytes)
