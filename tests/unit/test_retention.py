"""Retention: the baseline folds exactly like the entries it replaces, and the daily timer applies
BRIDGE_RETENTION_DAYS and logs counts only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.config import load_settings
from shared.config.exceptions import ConfigurationError
from shared.config.settings import DEFAULT_RETENTION_DAYS
from shared.delivery.merge import deciding_statements, fold
from shared.events.identity import ActivityOwner
from shared.events.model import AssignmentType, CourseStatus
from shared.operations.retention import baseline, compactable
from shared.runtime import Bridge
from shared.state.models import AssignmentEntry, EventEntry, JobCheckpoint
from tests.builders import TEST_SECRET
from tests.fakes import MemoryStateStore

BASE = datetime(2025, 1, 1, tzinfo=UTC)
ENV = {
    "BRIDGE_SOURCES": '{"generic": {"format": "generic"}}',
    "BRIDGE_SOURCE_GENERIC_SECRET": TEST_SECRET,
    "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
    "BRIDGE_STORAGE": "UseDevelopmentStorage=true",
}


@st.composite
def entries(draw: st.DrawFn) -> EventEntry:
    status = draw(st.sampled_from([CourseStatus.IN_PROGRESS, CourseStatus.COMPLETED]))
    day = draw(st.integers(0, 400))
    started = BASE + timedelta(days=draw(st.integers(0, 400)))
    completed = BASE + timedelta(days=day) if status is CourseStatus.COMPLETED else None
    return EventEntry(
        source=draw(st.sampled_from(["generic", "lrs"])),
        event_id=draw(st.uuids()).hex,
        occurred_at=BASE + timedelta(days=day),
        status=status,
        completion_percentage=100 if completed else draw(st.none() | st.integers(0, 100)),
        started_at=draw(st.none() | st.just(started)),
        completed_at=completed,
        voided_by=draw(st.none() | st.just("void-1")),
    )


@given(st.lists(entries(), max_size=8), st.lists(entries(), max_size=8))
def test_a_baseline_folds_like_the_old_entries_it_replaces(
    old: list[EventEntry], newer: list[EventEntry]
) -> None:
    live = [e for e in old if e.voided_by is None]
    tombstones = [e for e in old if e.voided_by is not None]
    base = baseline(live)
    compacted = ([base] if base else []) + tombstones + newer
    assert fold(compacted) == fold(old + newer)


@st.composite
def statements(draw: st.DrawFn) -> EventEntry:
    """Assignment statements and withdrawals (issue 18), with or without progress."""
    entry = draw(entries())
    withdrawn = draw(st.booleans())
    stated = (
        AssignmentEntry(withdrawn=True)
        if withdrawn
        else AssignmentEntry(
            assignment_type=draw(st.sampled_from(list(AssignmentType))),
            due_at=BASE + timedelta(days=draw(st.integers(0, 400))),
            notes=draw(st.none() | st.just("Before the audit.")),
            assigned_at=draw(st.none() | st.just(BASE)),
            assigner_user_id=draw(st.none() | st.sampled_from(["grace-id", "alan-id"])),
        )
    )
    status = draw(st.sampled_from(list(CourseStatus)))
    if status is CourseStatus.NOT_STARTED:
        entry = replace(entry, status=status, completion_percentage=None, started_at=None, completed_at=None)
    return replace(entry, assignment=stated)


def _later(entry: EventEntry) -> EventEntry:
    """The entry as one that happened after every entry `entries` draws (days 0..400)."""
    return replace(entry, occurred_at=entry.occurred_at + timedelta(days=401))


@given(
    st.lists(entries() | statements(), max_size=10),
    st.lists(entries() | statements(), max_size=4),
    st.lists(entries() | statements(), max_size=6),
)
def test_assignment_statements_fold_too_and_the_fold_does_not_move_now_or_with_newer_statements(
    old: list[EventEntry], recent: list[EventEntry], newer: list[EventEntry]
) -> None:
    """Retention folds the statements that no longer decide the assignment (a 360Learning path states
    it with every status) into the baseline; the deciding ones (merge.deciding_statements, over the
    whole log) keep their own time. The log folds as before, and so it does as newer events come."""
    log = old + recent
    deciding = deciding_statements(e for e in log if e.voided_by is None)
    folded = [e for e in old if compactable(e, deciding)]
    kept = [e for e in old if not compactable(e, deciding)]
    base = baseline(folded)
    compacted = ([base] if base else []) + kept + recent
    assert fold(compacted) == fold(log)
    later = [_later(e) for e in newer]
    assert fold(compacted + later) == fold(log + later)
    # however many: the newest, the last withdrawal, the first since it, the newest naming each
    # assigner (two drawn; review 18c: forget reads an earlier assigner's)
    assert sum(e.assignment is not None and e.voided_by is None for e in kept) <= 3 + 2


def test_retention_days_default_to_about_a_year_and_must_be_positive() -> None:
    assert load_settings(ENV).retention_days == DEFAULT_RETENTION_DAYS == 400
    assert load_settings({**ENV, "BRIDGE_RETENTION_DAYS": "30"}).retention_days == 30
    with pytest.raises(ConfigurationError, match="BRIDGE_RETENTION_DAYS"):
        load_settings({**ENV, "BRIDGE_RETENTION_DAYS": "0"})


def _bridge_over(store: object, monkeypatch: pytest.MonkeyPatch, days: int = 30) -> Bridge:
    from tests.fakes import FakeQueue

    bridge = Bridge(load_settings({**ENV, "BRIDGE_RETENTION_DAYS": str(days)}), queues=FakeQueue())
    monkeypatch.setattr(bridge, "state", lambda: store)
    return bridge


async def _store_with_old_logs(activities: int) -> MemoryStateStore:
    store = MemoryStateStore()
    entry = EventEntry("generic", "evt-1", BASE, CourseStatus.IN_PROGRESS, 10, BASE)
    for n in range(activities):
        for event_id in ("evt-1", "evt-2"):
            await store.add_event(f"activity-{n}", replace(entry, event_id=event_id))
    long_ago = datetime.now(UTC) - timedelta(days=31)
    store.written = dict.fromkeys(store.written, long_ago)
    # yesterday's pass is done: today's is due
    store.jobs["retention"] = JobCheckpoint("retention", datetime.now(UTC) - timedelta(days=2), finished=True)
    return store


async def test_the_daily_timer_applies_the_setting_and_logs_counts_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.functions import maintenance

    store = await _store_with_old_logs(1)
    caplog.set_level("INFO")
    counts = await maintenance.retention(_bridge_over(store, monkeypatch))
    assert counts["logsCompacted"] == 1
    assert counts["entriesFolded"] == 1
    assert "retention (30 days, 1 run(s)): deliveriesRemoved=0 logsCompacted=1" in caplog.text
    assert await maintenance.retention(_bridge_over(store, monkeypatch)) == {}


async def test_the_first_run_of_the_timer_waits_for_the_next_daily_occurrence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.functions import maintenance

    store = await _store_with_old_logs(1)
    del store.jobs["retention"]
    assert await maintenance.retention(_bridge_over(store, monkeypatch)) == {}
    assert store.jobs["retention"].finished
    assert len(store.event_log["activity-0"]) == 2  # nothing folded yet


async def test_a_pass_longer_than_one_runs_budget_goes_on_in_the_next_runs_and_logs_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The host's functionTimeout never decides: each run stops at its budget (here: after one log)."""
    from shared.delivery import deadline
    from shared.functions import maintenance

    class OneLogARun:
        checks = 0

        def expired(self) -> bool:
            self.checks += 1
            return self.checks > 1

    monkeypatch.setattr(deadline.Deadline, "maintenance", classmethod(lambda cls: OneLogARun()))
    store = await _store_with_old_logs(3)
    caplog.set_level("INFO")
    runs = [await maintenance.retention(_bridge_over(store, monkeypatch)) for _ in range(4)]
    assert [r.get("logsCompacted") for r in runs] == [1, 2, 3, 3]
    assert store.jobs["retention"].finished
    assert store.jobs["retention"].runs == 4
    assert caplog.text.count("stopped at its time budget") == 3
    assert caplog.text.count("retention (30 days, 4 run(s)): ") == 1
    assert all(len(log) == 1 for log in store.event_log.values())
    assert await maintenance.retention(_bridge_over(store, monkeypatch)) == {}


async def test_a_dry_run_counts_the_deliveries_a_real_run_removes_with_their_old_dead_letters() -> None:
    """The review of issue 17: a real run removes old dead letters first, then the delivery rows they
    kept; the dry run kept those rows (their letters were still there) and counted fewer."""
    from shared.operations.retention import apply_retention
    from shared.state.models import DeadLetterRecord, DeliveryRecord, LetterState

    store = MemoryStateStore()
    old = BASE - timedelta(days=500)
    for n, state in enumerate((LetterState.DEADLETTERED, LetterState.PARKED, LetterState.REPLAYED)):
        await store.save_delivery(DeliveryRecord("generic", f"evt-{n}", "act-1", "failed"))
        store.written[("d", "generic", f"evt-{n}")] = old
        await store.save_dead_letter(
            DeadLetterRecord("generic", f"evt-{n}", state, "poison", "", "{}", 1, old, old)
        )
    dry = await apply_retention(store, BASE, 30, dry_run=True)
    real = await apply_retention(store, BASE, 30)
    assert dry == real
    assert (real.dead_letters_removed, real.deliveries_removed) == (2, 2)


async def test_a_retention_pass_drops_graph_writes_older_than_the_period_and_counts_them() -> None:
    from shared.operations.retention import apply_retention
    from shared.state.models import GraphWrite, noted
    from tests.builders import USER_ID

    store = MemoryStateStore()
    owner = ActivityOwner("generic", USER_ID, "course-101")
    row = await store.claim_activity(
        "act-1", owner, [EventEntry("generic", "e1", BASE, CourseStatus.IN_PROGRESS, 10)]
    )
    now = datetime.now(UTC)
    old, recent = GraphWrite("create", now - timedelta(days=40), 201), GraphWrite("patch", now, 204)
    await store.save_activity(noted(row, old, recent))
    store.written[("e", "act-1", "generic", "e1")] = now - timedelta(days=40)  # an old log: visited
    report = await apply_retention(store, now, 30)
    assert report.graph_writes_removed == 1
    assert report.counts()["graphWritesRemoved"] == 1
    assert store.activities["act-1"].writes == (recent,)
