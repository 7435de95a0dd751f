"""Reconciling the state store with Graph, over the unit fakes (end to end in tests/e2e)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shared.delivery import CourseActivityUpserter
from shared.events.model import CourseStatus
from shared.graph.errors import GraphError
from shared.graph.gateway import ActivityRecord
from shared.operations.batching import Pacer
from shared.operations.reconcile import ReconcileReport, reconcile, rows_to_check
from tests.builders import USER_ID, canonical
from tests.fakes import FakeGraph, MemoryStateStore

if TYPE_CHECKING:
    from shared.runtime import Bridge

GRACE_ID = "7e2d9b4c-3a1f-4c8e-b6d2-0f9e8d7c6b5a"


make = canonical  # a generic-source event, fields overridden


async def setup() -> tuple[FakeGraph, MemoryStateStore, CourseActivityUpserter]:
    graph = FakeGraph()
    graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    graph.users_by_mail["grace@contoso.example"] = GRACE_ID
    graph.contents.update({"course-101": "c-101", "course-202": "c-202", "course-303": "c-303"})
    state = MemoryStateStore()
    upserter = CourseActivityUpserter(graph, state)
    await upserter.apply(make(eventId="a1", completionPercentage=40))
    await upserter.apply(make(eventId="a2", course={"externalId": "course-202"}, completionPercentage=60))
    await upserter.apply(make(eventId="a3", course={"externalId": "course-303"}, completionPercentage=70))
    await upserter.apply(make(eventId="g1", learner={"email": "grace@contoso.example"}))
    return graph, state, upserter


async def run(
    graph: FakeGraph, state: MemoryStateStore, upserter: CourseActivityUpserter, *, repair: bool
) -> ReconcileReport:
    rows = await rows_to_check(state, None)
    return await reconcile(state, graph, upserter, rows, repair=repair, pacer=Pacer(0))


def by_content(graph: FakeGraph, content_id: str) -> list[ActivityRecord]:
    return [r for r in graph.activities.values() if r.learning_content_id == content_id]


async def tamper(graph: FakeGraph) -> None:
    """Behind the bridge's back: one record deleted, one moved backwards, one handed to another learner."""
    for key, record in list(graph.activities.items()):
        if record.learning_content_id == "c-101" and record.learner_user_id == USER_ID:
            del graph.activities[key]
        elif record.learning_content_id == "c-202":
            graph.activities[key] = replace(record, completion_percentage=10)
        elif record.learning_content_id == "c-303":
            graph.activities[key] = replace(record, learner_user_id=GRACE_ID)


async def test_records_as_written_report_no_drift() -> None:
    graph, state, upserter = await setup()
    report = await run(graph, state, upserter, repair=False)
    assert (report.checked, report.in_line, report.drift) == (4, 4, [])


async def test_drift_is_reported_by_kind_and_field_and_nothing_is_written() -> None:
    graph, state, upserter = await setup()
    await tamper(graph)
    graph.calls.clear()
    report = await run(graph, state, upserter, repair=False)
    kinds = sorted((d.kind, d.fields) for d in report.drift)
    assert kinds == [("changed", ("completionPercentage",)), ("foreignOwner", ()), ("missing", ())]
    assert not {"create_activity", "update_activity", "delete_activity"} & set(graph.calls)


async def test_repair_writes_what_the_events_call_for_again() -> None:
    graph, state, upserter = await setup()
    await tamper(graph)
    report = await run(graph, state, upserter, repair=True)
    assert report.counts()["repaired"] == 2
    [foreign] = [d for d in report.drift if not d.repaired]
    assert foreign.kind == "foreignOwner"
    [restored] = [
        r
        for r in graph.activities.values()
        if r.learning_content_id == "c-101" and r.learner_user_id == USER_ID
    ]
    assert (restored.status, restored.completion_percentage) == (CourseStatus.IN_PROGRESS, 40)
    [moved_back] = by_content(graph, "c-202")
    assert moved_back.completion_percentage == 60
    again = await run(graph, state, upserter, repair=False)
    assert [d.kind for d in again.drift] == ["foreignOwner"]


async def test_throttled_reads_wait_as_graph_asks() -> None:
    graph, state, upserter = await setup()
    graph.errors["get_activity"].append(GraphError(429, "TooManyRequests", "slow", retry_after=0))
    report = await run(graph, state, upserter, repair=False)
    assert report.in_line == 4


async def test_the_pacer_spaces_reads_by_the_rate() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    pacer = Pacer(2.0, sleep)
    for _ in range(3):
        await pacer.wait()
    # The sleep above does not pass time, so each read is scheduled half a second after the last.
    assert len(waits) == 2
    assert 0.4 < waits[0] <= 0.5
    assert 0.9 < waits[1] <= 1.0


async def test_the_daily_timer_reports_counts_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.functions import maintenance

    graph, state, _ = await setup()
    await tamper(graph)
    bridge = _timer_bridge(state, graph, monkeypatch)
    graph.calls.clear()
    caplog.set_level("INFO")
    _a_pass_is_due(state)
    counts = await maintenance.reconcile_report(bridge)
    assert (counts["missing"], counts["changed"], counts["foreignOwner"], counts["repaired"]) == (1, 1, 1, 0)
    assert "reconcile (report only, 1 run(s)): checked=4" in caplog.text
    assert set(graph.calls) <= {"get_activity", "find_content_id"}


async def test_records_are_read_back_twenty_to_a_batch() -> None:
    graph, state, upserter = await setup()
    graph.contents.update({f"course-b{n}": f"c-b{n}" for n in range(21)})
    for n in range(21):  # 25 records in all
        await upserter.apply(make(eventId=f"b{n}", course={"externalId": f"course-b{n}"}))
    graph.batches.clear()
    report = await run(graph, state, upserter, repair=False)
    assert (report.checked, report.in_line) == (25, 25)
    assert graph.batches == [
        ("find_content_id", 20),
        ("find_content_id", 4),
        ("get_activity", 20),
        ("get_activity", 5),
    ]


async def test_a_read_throttled_in_a_batch_is_asked_again_alone_and_the_others_used() -> None:
    graph, state, upserter = await setup()
    await tamper(graph)
    [throttled] = [r.external_id for r in by_content(graph, "c-202")]
    graph.errors_for[("get_activity", throttled)].append(
        GraphError(429, "TooManyRequests", "slow", retry_after=0)
    )
    graph.batches.clear()
    report = await run(graph, state, upserter, repair=False)
    assert graph.batches == [("find_content_id", 3), ("get_activity", 4), ("get_activity", 1)]
    assert sorted(d.kind for d in report.drift) == ["changed", "foreignOwner", "missing"]
    assert report.checked == 4


def throttle_for_good(graph: FakeGraph, external_id: str) -> None:
    """Every attempt at reading this record is throttled (more 429s than the reads' attempts)."""
    from shared.operations.batching import THROTTLE_ATTEMPTS

    graph.errors_for[("get_activity", external_id)].extend(
        GraphError(429, "TooManyRequests", "slow", retry_after=0) for _ in range(THROTTLE_ATTEMPTS + 1)
    )


async def test_a_read_throttled_past_its_attempts_is_unread_and_the_others_are_still_reported() -> None:
    graph, state, upserter = await setup()
    await tamper(graph)
    [throttled] = by_content(graph, "c-202")
    throttle_for_good(graph, throttled.external_id)

    report = await run(graph, state, upserter, repair=False)

    assert [(u.activity_id, u.reason) for u in report.unread] == [
        (throttled.external_id, "Graph 429 TooManyRequests: slow (still failing after 5 attempts)")
    ]
    assert sorted(d.kind for d in report.drift) == ["foreignOwner", "missing"]
    assert (report.counts()["checked"], report.counts()["unread"]) == (3, 1)
    assert report.to_json()["unreadRecords"] == [
        {"activityId": throttled.external_id, "source": "generic", "reason": report.unread[0].reason}
    ]


async def test_a_course_whose_content_cannot_be_read_leaves_its_records_unread() -> None:
    graph, state, upserter = await setup()
    graph.errors_for[("find_content_id", "course-202")].append(GraphError(400, "BadRequest", "odd key"))
    report = await run(graph, state, upserter, repair=False)
    assert [u.reason for u in report.unread] == [
        "its course's content could not be read: Graph 400 BadRequest: odd key"
    ]
    assert (report.checked, report.in_line) == (3, 3)


def test_the_cli_prints_unread_records_as_a_line_of_the_report_and_exits_1(tmp_path: Path) -> None:
    from tests.cli_harness import Backends, fake_backends, run_cli, write_settings

    fakes = Backends()

    async def prepare() -> str:
        graph, store = fakes.graph, fakes.store
        graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
        graph.contents.update({"course-101": "c-101", "course-202": "c-202"})
        upserter = CourseActivityUpserter(graph, store)
        await upserter.apply(make(eventId="a1"))
        await upserter.apply(make(eventId="a2", course={"externalId": "course-202"}))
        [record] = by_content(graph, "c-202")
        return record.external_id

    throttled = asyncio.run(prepare())
    throttle_for_good(fakes.graph, throttled)
    settings = str(write_settings(tmp_path))
    with fake_backends(fakes):
        text = run_cli(["--settings", settings, "reconcile"])
        throttle_for_good(fakes.graph, throttled)
        as_json = run_cli(["--settings", settings, "reconcile", "--json"])

    assert (text.code, text.error_lines) == (1, []), text
    assert f"unread: activity {throttled} source=generic: Graph 429 TooManyRequests" in text.out
    assert "checked=1, inLine=1, skipped=0, unread=1," in text.out
    report = json.loads(as_json.out)
    assert as_json.code == 1
    assert (report["unread"], report["unreadRecords"][0]["activityId"]) == (1, throttled)


async def test_the_daily_timer_logs_its_counts_with_the_unread_records(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.functions import maintenance

    graph, state, _ = await setup()
    [throttled] = by_content(graph, "c-202")
    throttle_for_good(graph, throttled.external_id)
    bridge = _timer_bridge(state, graph, monkeypatch)
    caplog.set_level("INFO")
    _a_pass_is_due(state)
    counts = await maintenance.reconcile_report(bridge)
    assert (counts["checked"], counts["unread"]) == (3, 1)
    assert "reconcile (report only, 1 run(s)): checked=3 inLine=3 skipped=0 unread=1" in caplog.text


def _a_pass_is_due(state: MemoryStateStore) -> None:
    """Yesterday's reconcile pass is done: today's is due."""
    from datetime import UTC, datetime, timedelta

    from shared.state.models import JobCheckpoint

    state.jobs["reconcile"] = JobCheckpoint("reconcile", datetime.now(UTC) - timedelta(days=2), finished=True)


async def test_the_daily_pass_longer_than_one_runs_budget_goes_on_from_its_cursor_and_reports_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The host's functionTimeout never decides: each run compares a page, then stops at its budget."""
    from shared.delivery import deadline
    from shared.functions import maintenance

    class OnePageARun:
        checks = 0

        def expired(self) -> bool:
            self.checks += 1
            return self.checks > 1

    graph, state, upserter = await setup()
    graph.contents.update({f"course-p{n}": f"c-p{n}" for n in range(6)})
    for n in range(6):
        await upserter.apply(make(eventId=f"p{n}", course={"externalId": f"course-p{n}"}))
    monkeypatch.setattr(deadline.Deadline, "maintenance", classmethod(lambda cls: OnePageARun()))
    monkeypatch.setattr(maintenance, "RECONCILE_PAGE", 4)
    bridge = _timer_bridge(state, graph, monkeypatch)
    caplog.set_level("INFO")
    _a_pass_is_due(state)
    total = len([row async for row in state.all_activities()])
    runs = [await maintenance.reconcile_report(bridge) for _ in range(-(-total // 4))]
    assert [r["checked"] for r in runs] == [min(4 * (n + 1), total) for n in range(len(runs))]
    assert state.jobs["reconcile"].finished
    assert caplog.text.count("stopped at its time budget") == len(runs) - 1
    assert caplog.text.count(f"reconcile (report only, {len(runs)} run(s)): checked={total}") == 1
    assert await maintenance.reconcile_report(bridge) == {}  # done for today


def _timer_bridge(state: MemoryStateStore, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> Bridge:
    """The app's Bridge as the daily timer gets it, over the test's store and Graph."""
    import shared.graph.msgraph_gateway as gateway
    from shared.config import load_settings
    from shared.runtime import Bridge
    from tests.builders import TEST_SECRET
    from tests.fakes import FakeQueue

    settings = load_settings(
        {
            "BRIDGE_SOURCES": '{"generic": {"format": "generic"}}',
            "BRIDGE_SOURCE_GENERIC_SECRET": TEST_SECRET,
            "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
            "BRIDGE_STORAGE": "UseDevelopmentStorage=true",
        }
    )
    bridge = Bridge(settings, queues=FakeQueue())
    monkeypatch.setattr(bridge, "state", lambda: state)
    monkeypatch.setattr(gateway, "build_learning_graph", lambda _: graph)
    return bridge


async def test_an_assignment_changed_behind_the_bridges_back_is_drift_and_repaired() -> None:
    graph, state, upserter = await setup()
    assignment = {"type": "required", "dueAt": "2026-12-31T17:00:00Z", "notes": "Before the audit."}
    await upserter.apply(make(eventId="as1", course={"externalId": "course-202"}, assignment=assignment))
    assert (await run(graph, state, upserter, repair=False)).drift == []
    [record] = by_content(graph, "c-202")
    key = next(k for k, r in graph.activities.items() if r is record)
    graph.activities[key] = replace(record, due_at=None, notes="Edited in Viva.")
    report = await run(graph, state, upserter, repair=True)
    assert [(d.kind, d.fields, d.repaired) for d in report.drift] == [
        ("changed", ("dueDateTime", "notes"), True)
    ]
    [repaired] = by_content(graph, "c-202")
    assert (repaired.notes, repaired.is_assignment, repaired.completion_percentage) == (
        "Before the audit.",
        True,
        60,
    )
    assert (await run(graph, state, upserter, repair=False)).drift == []


# ---- every assignment field Graph shows (issue 18) ---------------------------------------------------

BY_GRACE = {
    "type": "required",
    "dueAt": "2026-12-31T17:00:00Z",
    "notes": "Before the audit.",
    "assigner": {"email": "grace@contoso.example"},
}


async def assigned_record() -> tuple[FakeGraph, MemoryStateStore, CourseActivityUpserter, str]:
    """Ada's course-202, assigned by Grace (60 % through it); the key of its record in the fake."""
    graph, state, upserter = await setup()
    await upserter.apply(make(eventId="as1", course={"externalId": "course-202"}, assignment=BY_GRACE))
    [record] = by_content(graph, "c-202")
    assert record.assigner_user_id == GRACE_ID
    return graph, state, upserter, next(k for k, r in graph.activities.items() if r is record)


@pytest.mark.parametrize(
    ("edit", "fields"),
    [
        ({"assigner_user_id": USER_ID}, ("assignerUserId",)),
        ({"assigner_user_id": None}, ("assignerUserId",)),
        ({"assignment_type": "recommended"}, ("assignmentType",)),
        (
            {
                "assignment_type": None,
                "assigned_at": None,
                "due_at": None,
                "notes": None,
                "assigner_user_id": None,
            },
            ("assignmentType", "assignedDateTime", "dueDateTime", "notes", "assignerUserId"),
        ),
    ],
    ids=["another-assigner", "assigner-gone", "type", "no-longer-an-assignment"],
)
async def test_an_assignment_field_changed_in_graph_is_drift_and_repaired_by_creating_it_again(
    edit: dict[str, object], fields: tuple[str, ...]
) -> None:
    """Type, assigner, due date and notes as Graph shows them are compared with what was written. The
    assigner and the type cannot be PATCHed (the Update page): repair deletes the record and creates it
    again as the events call for, Grace as its assigner, with Ada's progress."""
    graph, state, upserter, key = await assigned_record()
    graph.activities[key] = replace(graph.activities[key], **edit)  # type: ignore[arg-type]

    report = await run(graph, state, upserter, repair=True)

    assert [(d.kind, d.fields, d.repaired) for d in report.drift] == [("changed", fields, True)]
    [repaired] = by_content(graph, "c-202")
    assert (
        repaired.assignment_type,
        repaired.assigner_user_id,
        repaired.notes,
        repaired.completion_percentage,
    ) == (
        "required",
        GRACE_ID,
        "Before the audit.",
        60,
    )
    assert (await run(graph, state, upserter, repair=False)).drift == []


async def test_an_assigner_graph_spells_in_another_case_is_no_drift() -> None:
    """An Entra object id is a GUID: its case says nothing (a repair would re-create the record)."""
    graph, state, upserter, key = await assigned_record()
    graph.activities[key] = replace(graph.activities[key], assigner_user_id=GRACE_ID.upper())
    assert (await run(graph, state, upserter, repair=False)).drift == []
