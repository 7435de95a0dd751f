"""Review 19c of issue 19 ("Real tenants"), after the review-19 fixes: each test states what the issue,
the docs or Graph's rules require, and failed on the code as merged (f988a1f). Over the unit tests'
fakes (tests/cli_harness.py) unless a test says otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_harness import Backends, Outcome, fake_backends, run_cli, write_settings

LOGOS = [f"https://cdn.contoso.example/logo-{n}.png" for n in range(4)]


def run(fakes: Backends, tmp_path: Path, *argv: str) -> Outcome:
    settings = write_settings(tmp_path, None)
    with fake_backends(fakes):
        return run_cli(["--settings", str(settings), *argv])


# ---- provider register: the logo's host ---------------------------------------------------------


@pytest.mark.parametrize(
    "logo",
    [
        "https://[2002:7f00:1::]/logo.png",  # 6to4 (RFC 3056) around 127.0.0.1
        "https://[64:ff9b::a00:5]/logo.png",  # NAT64's well-known prefix (RFC 6052) around 10.0.0.5
        "https://[::7f00:1]/logo.png",  # IPv4-compatible ::127.0.0.1 (RFC 4291 2.5.5.1)
        "https://[fec0::1]/logo.png",  # site-local (RFC 3879: deprecated, still private)
    ],
)
def test_register_refuses_a_logo_whose_ipv6_host_wraps_a_private_ipv4_address(
    tmp_path: Path, logo: str
) -> None:
    """docs/operate.md, `provider register`: each logo "a public https URL (no loopback or private
    address)", refused "however spelled" (review 19 finding 9 named IPv4-mapped IPv6). Python's
    ipaddress calls these IPv6 forms global, though each carries a loopback or private IPv4 address
    (a NAT64 or 6to4 gateway forwards to it) or is site-local."""
    fakes = Backends()
    outcome = run(fakes, tmp_path, "provider", "register", "--name", "C", "--logos", *LOGOS[:3], logo)
    assert outcome.code == 2, outcome
    assert "is not public" in " ".join(outcome.error_lines)
    assert fakes.providers.records == {}


def test_register_refuses_a_logo_whose_name_resolves_to_a_nat64_form_of_a_private_address(
    tmp_path: Path,
) -> None:
    """As above, for a name: its AAAA record `64:ff9b::a00:5` (10.0.0.5 behind NAT64) is as private as
    an A record 10.0.0.5."""
    fakes = Backends(resolved={"logo.contoso.example": ["64:ff9b::a00:5"]})
    logo = "https://logo.contoso.example/logo.png"
    outcome = run(fakes, tmp_path, "provider", "register", "--name", "C", "--logos", *LOGOS[:3], logo)
    assert outcome.code == 2, outcome
    assert "is not public" in " ".join(outcome.error_lines)


# ---- the write history in stored rows -----------------------------------------------------------


def _row(writes: str) -> Any:
    from azure.data.tables import TableEntity

    row = TableEntity(activityId="a-1", writes=writes)
    row._metadata = {"etag": 'W/"1"', "timestamp": None}
    return row


@pytest.mark.parametrize(
    "writes",
    [
        # a newer version's item with one more member (a rollback reads what it wrote)
        '[["create","2026-12-01T10:00:00+00:00",201,null,"generic:e-1","x"]]',
        # an item cut short, or not an item at all (a row edited by hand in Storage Explorer)
        '[["create","2026-12-01T10:00:00+00:00"],7]',
        # not JSON
        '[["create"',
    ],
)
def test_an_activity_row_whose_write_history_cannot_be_read_still_loads(writes: str) -> None:
    """GUIDE: every accepted event is delivered or kept; shared.state.models: the write history is
    "Not state", only what `trace` shows. store._activity reads every delivery's row, and
    store._writes unpacks each item into exactly five names and parses with json.loads unguarded,
    where _held beside it takes `item[:8]`: one unreadable history makes the activity unloadable, and
    every event of the record fails (poisoned) instead of being written to Graph."""
    from shared.state.store import _activity

    state = _activity(_row(writes))
    assert state.activity_id == "a-1"
    assert all(w.request == "create" for w in state.writes)


def test_the_readable_writes_of_a_history_are_kept_beside_an_unreadable_one() -> None:
    """As above: what can be read is still shown by `trace` (docs/operate.md, trace's write history)."""
    from shared.state.store import _activity

    good = '["patch","2026-12-02T10:00:00+00:00",204,null,"generic:e-2"]'
    state = _activity(_row(f'[["create","2026-12-01T10:00:00+00:00",201,null,"generic:e-1","x"],7,{good}]'))
    assert [w.request for w in state.writes] == ["create", "patch"]


# ---- the write history and retention ------------------------------------------------------------


async def test_a_write_older_than_the_retention_period_leaves_the_history_when_the_row_is_written_again(
    state: Any,
) -> None:
    """docs/operate.md, trace's write history: retention drops the writes older than
    BRIDGE_RETENTION_DAYS "so nothing about an event outlives the period there either". It visits only
    the logs holding a row last written before the cutoff (store.old_logs), and a record whose events
    all live in its activity row, written again today, has none: a write from 40 days before stayed
    among its 16 for as long as the record kept being written. The row's every write now drops them."""
    from datetime import UTC, datetime, timedelta

    from shared.delivery import CourseActivityUpserter
    from tests.builders import USER_ID, canonical
    from tests.fakes import FakeGraph

    graph = FakeGraph()
    graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    graph.contents["course-101"] = "content-101"
    now = [datetime(2026, 10, 1, tzinfo=UTC)]
    upserter = CourseActivityUpserter(graph, state, clock=lambda: now[0], write_retention=timedelta(days=30))
    await upserter.apply(canonical(eventId="a"))
    now[0] += timedelta(days=40)
    await upserter.apply(canonical(eventId="b", completionPercentage=80))
    [row] = state.activities.values()
    assert [w.request for w in row.writes] == ["patch"]


# ---- operator commands' waits -------------------------------------------------------------------


async def test_a_throttled_batch_tells_its_wait_once_not_once_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/operate.md, "Waiting for Graph": "Each wait of 10 s or more is told on stderr as it
    starts". A batch of 20 requests that Graph throttles together ("Retry after 1 minutes") is one
    wait, yet batching.in_batches told it once per request: 20 identical warning lines."""
    import logging

    from shared.graph.errors import GraphError
    from shared.operations.batching import in_batches

    calls = [0]

    async def send(keys: Any) -> list[Any]:
        calls[0] += 1
        if calls[0] == 1:
            return [GraphError(429, "tooManyRequests", "Retry after 1 minutes") for _ in keys]
        return list(keys)

    async def sleep(_: float) -> None:
        return None

    keys = [f"k{n}" for n in range(20)]
    with caplog.at_level(logging.WARNING, logger="shared.operations.batching"):
        answers = [a async for a in in_batches(keys, send, sleep=sleep, clock=lambda: 0.0)]
    assert sorted(k for k, _ in answers) == sorted(keys)
    told = [r for r in caplog.records if "waiting" in r.getMessage()]
    assert len(told) == 1, [r.getMessage() for r in told]
