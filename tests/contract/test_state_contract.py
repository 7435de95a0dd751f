"""The state store's behaviour as the upserter relies on it: the same cases against the unit tests'
MemoryStateStore and against TableStateStore on Azurite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from devtools.localstack.processes import AzuritePorts
from shared.delivery.merge import fold
from shared.events.identity import ActivityOwner
from shared.events.model import AssignmentType, CourseStatus, Learner
from shared.operations.forget import forget, plan_forget
from shared.operations.maintenance import MaintainedStore
from shared.operations.retention import BASELINE_SOURCE, RetainedStore, compact_log, drop_old_writes
from shared.state.models import (
    WRITE_HISTORY,
    AssignmentEntry,
    DeadLetterRecord,
    DeliveryRecord,
    EventEntry,
    GraphWrite,
    LetterState,
    noted,
)
from shared.state.store import Conflict, StateStore, TableStateStore
from tests.fakes import FakeGraph, MemoryStateStore

T = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
T2 = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
OWNER = ActivityOwner("generic", "4a1f3c2e-8b7d-4e6a-9f05-1c2d3e4f5a6b", "course-101")


@pytest.fixture(params=["memory", "azurite"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MaintainedStore]:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    from azure.data.tables.aio import TableServiceClient

    ports: AzuritePorts = request.getfixturevalue("azurite_ports")
    table = TableStateStore(TableServiceClient.from_connection_string(ports.connection_string()))
    try:
        yield table
    finally:
        await table.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def entry(source: str, event_id: str, percentage: int = 40) -> EventEntry:
    return EventEntry(source, event_id, T, CourseStatus.IN_PROGRESS, percentage, T)


async def test_a_delivery_reads_back_whole_with_its_voiding(store: StateStore) -> None:
    record = DeliveryRecord("generic", unique("evt"), "", "voided", 0, voided_by="void-1")
    await store.save_delivery(record)
    assert await store.delivery("generic", record.event_id) == record
    assert await store.delivery("other", record.event_id) is None


async def test_an_activity_is_claimed_once_with_its_owner(store: StateStore) -> None:
    activity = unique("act")
    claimed = await store.claim_activity(activity, OWNER)
    with pytest.raises(Conflict):
        await store.claim_activity(activity, OWNER)
    read = await store.activity(activity)
    assert read is not None
    assert (read.owner, read.graph_id, read.etag) == (OWNER, None, claimed.etag)


async def test_a_save_on_a_stale_etag_is_a_conflict(store: StateStore) -> None:
    claimed = await store.claim_activity(unique("act"), OWNER)
    saved = await store.save_activity(replace(claimed, graph_id="g1", status=CourseStatus.IN_PROGRESS))
    with pytest.raises(Conflict):
        await store.save_activity(replace(claimed, graph_id="g2"))
    read = await store.activity(claimed.activity_id)
    assert read is not None
    assert (read.graph_id, read.status, read.etag) == ("g1", CourseStatus.IN_PROGRESS, saved.etag)


async def test_two_sources_with_one_event_id_keep_two_entries(store: StateStore) -> None:
    activity = unique("act")
    await store.add_event(activity, entry("generic", "same", 40))
    await store.add_event(activity, entry("other", "same", 90))
    read = sorted(await store.events(activity), key=lambda e: e.source)
    assert [(e.source, e.event_id, e.completion_percentage) for e in read] == [
        ("generic", "same", 40),
        ("other", "same", 90),
    ]


async def test_a_voiding_applies_whichever_arrives_first(store: StateStore) -> None:
    activity = unique("act")
    await store.void_event(activity, "generic", "early", "void-1")  # the voiding first
    # a voiding alone is no event, only a tombstone its event will find
    assert await store.events(activity) == [EventEntry.tombstone("generic", "early", "void-1")]
    await store.add_event(activity, entry("generic", "early"))
    await store.add_event(activity, entry("generic", "late"))
    await store.void_event(activity, "generic", "late", "void-2")
    await store.void_event(activity, "other", "late", "void-3")  # another source's id: its own tombstone
    voided = {(e.source, e.event_id): (e.voided_by, e.status) for e in await store.events(activity)}
    assert voided == {
        ("generic", "early"): ("void-1", CourseStatus.IN_PROGRESS),
        ("generic", "late"): ("void-2", CourseStatus.IN_PROGRESS),
        ("other", "late"): ("void-3", CourseStatus.NOT_STARTED),
    }


async def test_dead_letters_are_kept_listed_and_removed(store: StateStore) -> None:
    letter = DeadLetterRecord(
        "generic", unique("evt"), LetterState.PARKED, "learnerNotFound", "detail", "{}", 1, T, T, T
    )
    await store.save_dead_letter(letter)
    assert await store.dead_letter("generic", letter.event_id) == letter
    assert letter in [found async for found in store.dead_letters()]
    await store.delete_dead_letter("generic", letter.event_id)
    assert await store.dead_letter("generic", letter.event_id) is None


async def test_a_voiding_on_a_delivery_survives_the_events_own_save(store: StateStore) -> None:
    event_id = unique("evt")
    await store.void_delivery("generic", event_id, "void-1")  # the voiding came first
    assert await store.delivery("generic", event_id) == DeliveryRecord(
        "generic", event_id, "", "voided", 0, "void-1"
    )
    await store.save_delivery(DeliveryRecord("generic", event_id, "act-1", "applied", 1))
    assert await store.delivery("generic", event_id) == DeliveryRecord(
        "generic", event_id, "act-1", "applied", 1, voided_by="void-1"
    )
    await store.void_delivery("generic", event_id, "void-2")  # and a voiding after it changes only that
    assert await store.delivery("generic", event_id) == DeliveryRecord(
        "generic", event_id, "act-1", "applied", 1, voided_by="void-2"
    )


async def test_an_entry_added_already_voided_stays_voided(store: StateStore) -> None:
    activity = unique("act")
    await store.add_event(activity, replace(entry("generic", "withdrawn"), voided_by="void-1"))
    [found] = await store.events(activity)
    assert found.voided_by == "void-1"


async def test_an_activity_without_a_percentage_reads_back_without_one(store: StateStore) -> None:
    """Review 8: TableStateStore writes a missing completionPercentage as -1 and `activity()` reads the
    -1 back (only `events()` maps it to None). The upserter then sees the record it last wrote as
    having -1 %, so every later event on an activity without a percentage (xAPI launched/attempted,
    Caliper events, Docebo in_progress) PATCHes Graph with `"completionPercentage": null` instead of
    costing nothing. MemoryStateStore keeps None, so no unit test sees it."""
    claimed = await store.claim_activity(unique("act"), OWNER)
    saved = await store.save_activity(replace(claimed, graph_id="g1", status=CourseStatus.IN_PROGRESS))
    read = await store.activity(saved.activity_id)
    assert read is not None
    assert read.completion_percentage is None


# maintenance (forget, reconcile): the same on Azurite as in memory ---------------------------------


async def test_all_activities_lists_claimed_rows_with_their_owner(store: MaintainedStore) -> None:
    activity_id = unique("act")
    await store.claim_activity(activity_id, OWNER)
    listed = [a async for a in store.all_activities() if a.activity_id == activity_id]
    assert [a.owner for a in listed] == [OWNER]


async def test_event_keys_include_voidings_recorded_alone(store: MaintainedStore) -> None:
    activity_id = unique("act")
    await store.add_event(activity_id, entry("generic", "e-1"))
    await store.void_event(activity_id, "lrs", "e-2", "v-2")
    assert sorted(await store.event_keys(activity_id)) == [("generic", "e-1"), ("lrs", "e-2")]


async def test_deleted_rows_are_gone_and_deleting_twice_is_harmless(store: MaintainedStore) -> None:
    activity_id, event_id = unique("act"), unique("evt")
    await store.claim_activity(activity_id, OWNER)
    await store.add_event(activity_id, entry("generic", event_id))
    await store.save_delivery(DeliveryRecord("generic", event_id, activity_id, "applied"))
    for _ in range(2):
        await store.delete_event(activity_id, "generic", event_id)
        await store.delete_delivery("generic", event_id)
        await store.delete_activity(activity_id)
    assert await store.activity(activity_id) is None
    assert await store.events(activity_id) == []
    assert await store.delivery("generic", event_id) is None


async def test_an_assigner_is_found_and_scrubbed_wherever_the_log_holds_them(store: MaintainedStore) -> None:
    """forget of an assigner (issue 18): the row's held entries, an entry in a row of its own and the
    row's own state (what Graph was last given) are all found; the scrub takes the id out of the log
    entries, in any case, keeps the rest of each statement, and leaves the row's state to forget."""
    assigner = str(uuid.uuid4())
    activity, untouched = unique("act"), unique("act")
    statement = AssignmentEntry(
        assignment_type=AssignmentType.REQUIRED, due_at=T2, notes="by Friday", assigner_user_id=assigner
    )
    held = replace(entry("generic", unique("evt")), assignment=statement)
    alone = replace(
        entry("lrs", unique("stmt")), assignment=replace(statement, assigner_user_id=assigner.upper())
    )
    claimed = await store.claim_activity(activity, OWNER, [held])
    await store.save_activity(
        replace(claimed, graph_id="g1", assignment_type=AssignmentType.REQUIRED, assigner_user_id=assigner)
    )
    await store.add_event(activity, alone)
    await store.claim_activity(
        untouched,
        OWNER,
        [
            replace(
                entry("generic", unique("evt")),
                assignment=replace(statement, assigner_user_id=str(uuid.uuid4())),
            )
        ],
    )

    assert activity in [a async for a in store.assigner_activities(assigner)]
    assert untouched not in [a async for a in store.assigner_activities(assigner)]
    assert await store.scrub_assigner(activity, assigner) == 2
    assert await store.scrub_assigner(activity, assigner) == 0

    entries = {e.event_id: e.assignment for e in await store.events(activity)}
    assert entries == {
        held.event_id: replace(statement, assigner_user_id=None),
        alone.event_id: replace(statement, assigner_user_id=None),
    }
    row = await store.activity(activity)
    assert row is not None
    assert (row.graph_id, row.assigner_user_id) == ("g1", assigner)  # forget clears it once Graph is in line
    assert activity in [a async for a in store.assigner_activities(assigner)]  # by its row alone now


# retention --------------------------------------------------------------------------------------------


async def _pause() -> datetime:
    """A moment strictly between the writes before and after it (Azurite stamps rows in ms)."""
    await asyncio.sleep(0.05)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.05)
    return moment


async def test_compaction_folds_old_entries_into_one_baseline_and_the_fold_does_not_move(
    store: MaintainedStore,
) -> None:
    assert isinstance(store, RetainedStore)
    activity = unique("act")
    started = EventEntry("generic", unique("evt"), T, CourseStatus.IN_PROGRESS, 30, T)
    done = EventEntry("generic", unique("evt"), T2, CourseStatus.COMPLETED, 100, T, T2)
    voided = replace(entry("lrs", unique("stmt"), 90), voided_by="void-1")
    for item in (started, done, voided):
        await store.add_event(activity, item)
    cutoff = await _pause()
    later = entry("generic", unique("evt"), 50)
    await store.add_event(activity, later)
    before = fold(await store.events(activity))

    log = store.log_key(activity)
    assert log in [old async for old in store.old_logs(cutoff)]
    assert await compact_log(store, log, cutoff, dry_run=False) == 1

    after = await store.events(activity)
    assert fold(after) == before
    assert sorted(e.source for e in after if e.source != BASELINE_SOURCE) == sorted(
        [voided.source, later.source]
    )
    assert [e.source for e in after].count(BASELINE_SOURCE) == 1
    # the next pass folds the baseline with what has grown old since: still one baseline
    cutoff = await _pause()
    assert await compact_log(store, log, cutoff, dry_run=False) == 1
    assert fold(await store.events(activity)) == before
    assert len(await store.events(activity)) == 2


async def test_a_dry_run_compaction_counts_and_changes_nothing(store: MaintainedStore) -> None:
    assert isinstance(store, RetainedStore)
    activity = unique("act")
    for _ in range(3):
        await store.add_event(activity, entry("generic", unique("evt")))
    cutoff = await _pause()
    assert await compact_log(store, store.log_key(activity), cutoff, dry_run=True) == 2
    assert len(await store.events(activity)) == 3


async def test_old_deliveries_go_and_recorded_voidings_stay(store: MaintainedStore) -> None:
    assert isinstance(store, RetainedStore)
    source = unique("src")
    old = DeliveryRecord(source, unique("evt"), "act-1", "applied")
    await store.save_delivery(old)
    await store.void_delivery(source, "stmt-voided", "void-1")
    cutoff = await _pause()
    recent = DeliveryRecord(source, unique("evt"), "act-1", "applied")
    await store.save_delivery(recent)

    assert await store.purge_deliveries(cutoff, dry_run=True) >= 1
    assert await store.delivery(source, old.event_id) is not None
    await store.purge_deliveries(cutoff, dry_run=False)
    assert await store.delivery(source, old.event_id) is None
    assert await store.delivery(source, "stmt-voided") is not None
    assert await store.delivery(source, recent.event_id) is not None


async def test_a_letter_is_updated_only_while_it_exists_and_keeps_a_message_of_any_queue_size(
    store: MaintainedStore,
) -> None:
    """A letter's update after its event was applied (and the letter deleted) must not bring it back;
    a message longer than one Table string property (32K UTF-16 units) is kept whole."""
    source = unique("src")
    message = "é" * 40_000 + "😀" * 10_000  # 60,000 characters, 70,000 UTF-16 code units
    letter = DeadLetterRecord(source, unique("evt"), LetterState.PARKED, "poison", "", message, 1, T, T)
    await store.save_dead_letter(letter)
    assert await store.dead_letter(source, letter.event_id) == letter
    short = replace(letter, message="{}", attempts=2)
    assert await store.update_dead_letter(short)
    assert await store.dead_letter(source, letter.event_id) == short
    await store.delete_dead_letter(source, letter.event_id)
    assert not await store.update_dead_letter(letter)
    assert await store.dead_letter(source, letter.event_id) is None


async def test_an_event_is_marked_failed_unless_a_copy_of_it_was_applied(store: StateStore) -> None:
    source = unique("src")
    assert await store.mark_unapplied(source, "new", "failed")
    found = await store.delivery(source, "new")
    assert found is not None
    assert found.status == "failed"
    await store.save_delivery(DeliveryRecord(source, "pending", "act-1", "pending", 0))
    assert await store.mark_unapplied(source, "pending", "failed")
    found = await store.delivery(source, "pending")
    assert found is not None
    assert (found.status, found.activity_id) == ("failed", "act-1")
    await store.save_delivery(DeliveryRecord(source, "applied", "act-1", "applied"))
    assert not await store.mark_unapplied(source, "applied", "failed")
    found = await store.delivery(source, "applied")
    assert found is not None
    assert found.status == "applied"


async def test_a_purge_stopped_at_once_still_removes_what_it_found(store: MaintainedStore) -> None:
    """The review of issue 17: a purge that read every old row before deleting any spent a daily
    pass's whole time budget reading a large table and deleted nothing, every day. Stopped as soon as
    it asks, it deletes what it found by then: every run makes progress."""
    assert isinstance(store, RetainedStore)
    source = unique("src")
    for _ in range(3):
        await store.save_delivery(DeliveryRecord(source, unique("evt"), "act-1", "applied"))
        await store.save_dead_letter(
            DeadLetterRecord(source, unique("evt"), LetterState.DEADLETTERED, "poison", "", "{}", 1, T, T)
        )
    cutoff = await _pause()
    assert await store.purge_deliveries(cutoff, dry_run=False, stop=lambda: True) >= 1
    assert await store.purge_dead_letters(T + timedelta(days=1), dry_run=False, stop=lambda: True) >= 1


async def test_dead_letters_past_retention_go_but_parked_ones_stay(store: MaintainedStore) -> None:
    assert isinstance(store, RetainedStore)
    source = unique("src")
    old = T - timedelta(days=500)

    def letter(state: LetterState, last: datetime) -> DeadLetterRecord:
        return DeadLetterRecord(source, unique("evt"), state, "learnerNotFound", "", "{}", 1, old, last)

    gone = letter(LetterState.DEADLETTERED, old)
    parked = letter(LetterState.PARKED, old)
    recent = letter(LetterState.DEADLETTERED, T)
    for record in (gone, parked, recent):
        await store.save_dead_letter(record)
    await store.purge_dead_letters(T - timedelta(days=400), dry_run=False)
    assert await store.dead_letter(source, gone.event_id) is None
    assert await store.dead_letter(source, parked.event_id) is not None
    assert await store.dead_letter(source, recent.event_id) is not None


# the lean queue side: one read, one transaction ---------------------------------------------------


async def test_an_activity_and_its_log_load_together(store: StateStore) -> None:
    activity = unique("act")
    assert await store.load(activity) == (None, [])
    first = entry("generic", unique("evt"), 20)
    claimed = await store.claim_activity(activity, OWNER, [first])
    row, log = await store.load(activity)
    assert row == claimed
    assert log == [first]


async def test_a_row_write_that_loses_adds_no_entry(store: StateStore) -> None:
    activity = unique("act")
    claimed = await store.claim_activity(activity, OWNER)
    winner = entry("generic", unique("evt"), 30)
    saved = await store.save_activity(replace(claimed, completion_percentage=30), [winner])
    loser = entry("generic", unique("evt"), 50)
    with pytest.raises(Conflict):
        await store.save_activity(replace(claimed, completion_percentage=50), [loser])
    with pytest.raises(Conflict):
        await store.claim_activity(activity, OWNER, [loser])
    row, log = await store.load(activity)
    assert row == saved
    assert log == [winner]


async def test_an_entry_added_with_its_row_keeps_an_earlier_voiding(store: StateStore) -> None:
    activity = unique("act")
    claimed = await store.claim_activity(activity, OWNER)
    target = entry("lrs", unique("stmt"))
    await store.void_event(activity, target.source, target.event_id, "void-1")
    await store.save_activity(claimed, [target])
    assert (await store.load(activity))[1] == [replace(target, voided_by="void-1")]


async def test_a_delivery_is_inserted_once_and_the_second_insert_sees_the_first(store: StateStore) -> None:
    source = unique("src")
    first = DeliveryRecord(source, "evt-1", "act-1", "applied")
    assert await store.insert_delivery(first) is None
    assert await store.insert_delivery(replace(first, activity_id="act-2")) == first
    await store.void_delivery(source, "evt-2", "void-9")
    found = await store.insert_delivery(DeliveryRecord(source, "evt-2", "act-1", "applied"))
    assert found is not None
    assert found.voided_by == "void-9"


async def test_a_long_log_reads_back_whole_with_its_voidings(store: MaintainedStore) -> None:
    """Many entries (more than an activity row holds itself), one voided early and one late."""
    activity = unique("act")
    row = await store.claim_activity(activity, OWNER)
    ids = [f"evt-{n:03d}" for n in range(150)]
    for n, event_id in enumerate(ids):
        if n == 5:
            await store.void_event(activity, "generic", ids[2], "void-early")
        row = await store.save_activity(row, [entry("generic", event_id, n % 100)])
    await store.void_event(activity, "generic", ids[149], "void-late")
    _, log = await store.load(activity)
    assert sorted(e.event_id for e in log) == ids
    voided = {e.event_id: e.voided_by for e in log if e.voided_by}
    assert voided == {ids[2]: "void-early", ids[149]: "void-late"}
    assert sorted(k for _, k in await store.event_keys(activity)) == ids


async def test_compaction_folds_the_entries_an_old_activity_row_holds(store: MaintainedStore) -> None:
    assert isinstance(store, RetainedStore)
    activity = unique("act")
    row = await store.claim_activity(activity, OWNER, [entry("generic", unique("evt"), 10)])
    row = await store.save_activity(row, [entry("generic", unique("evt"), 60)])
    await store.save_activity(row, [replace(entry("lrs", unique("stmt"), 90), voided_by="void-1")])
    before = fold(await store.events(activity))
    cutoff = await _pause()
    assert store.log_key(activity) in [old async for old in store.old_logs(cutoff)]
    assert await compact_log(store, store.log_key(activity), cutoff, dry_run=False) == 1
    after = await store.events(activity)
    assert fold(after) == before
    assert sorted(e.source for e in after) == sorted([BASELINE_SOURCE, "lrs"])


async def test_a_daily_pass_checkpoint_reads_back_as_saved(store: MaintainedStore) -> None:
    from shared.operations.jobs import JobStore
    from shared.state.models import JobCheckpoint

    assert isinstance(store, JobStore)
    name = unique("job")
    assert await store.job_checkpoint(name) is None
    checkpoint = JobCheckpoint(name, T, finished=False, cursor="k-17", counts={"logsCompacted": 3}, runs=2)
    await store.save_job_checkpoint(checkpoint)
    assert await store.job_checkpoint(name) == checkpoint
    done = JobCheckpoint(name, T2, finished=True)
    await store.save_job_checkpoint(done)
    assert await store.job_checkpoint(name) == done


async def test_assignment_statements_and_an_assigned_row_read_back_whole(store: StateStore) -> None:
    activity = unique("act")
    stated = AssignmentEntry(False, AssignmentType.REQUIRED, T, T2, "Before the audit.", "grace-id")
    statement = replace(entry("generic", unique("evt")), assignment=stated)
    withdrawal = replace(entry("generic", unique("evt")), assignment=AssignmentEntry(withdrawn=True))
    alone = replace(entry("generic", unique("evt")), assignment=replace(stated, notes=None))
    claimed = await store.claim_activity(activity, OWNER, [statement])
    assigned = replace(
        claimed,
        graph_id="g1",
        status=CourseStatus.NOT_STARTED,
        assignment_type=AssignmentType.RECOMMENDED,
        assigned_at=T,
        due_at=T2,
        notes="Optional.",
        assigner_user_id="grace-id",
    )
    await store.save_activity(assigned, [withdrawal])
    await store.add_event(activity, alone)  # a row of its own
    row, log = await store.load(activity)
    assert row is not None
    assert (row.assignment_type, row.assigned_at, row.due_at, row.notes, row.assigner_user_id) == (
        AssignmentType.RECOMMENDED,
        T,
        T2,
        "Optional.",
        "grace-id",
    )
    by_id = {e.event_id: e.assignment for e in log}
    assert by_id == {
        statement.event_id: stated,
        withdrawal.event_id: AssignmentEntry(withdrawn=True),
        alone.event_id: replace(stated, notes=None),
    }


# the record's Graph writes (trace) ----------------------------------------------------------------------


def graph_write(number: int) -> GraphWrite:
    refused = number % 2 == 1
    return GraphWrite(
        "patch",
        T + timedelta(minutes=number),
        403 if refused else 204,
        "learnerNotLicensed" if refused else None,
        f"generic:evt-{number}",
    )


async def test_a_records_graph_writes_read_back_with_the_row_the_newest_kept(store: StateStore) -> None:
    activity = unique("act")
    row = await store.claim_activity(activity, OWNER, [entry("generic", unique("evt"))])
    writes = [graph_write(n) for n in range(WRITE_HISTORY + 3)]
    row = await store.save_activity(noted(row, *writes[:5]))
    await store.save_activity(noted(row, *writes[5:]))
    read = await store.activity(activity)
    assert read is not None
    assert read.writes == tuple(writes[-WRITE_HISTORY:])  # bounded: the oldest went
    loaded, _ = await store.load(activity)
    assert loaded is not None
    assert loaded.writes == read.writes


async def test_retention_folding_the_rows_entries_keeps_its_graph_writes(store: MaintainedStore) -> None:
    assert isinstance(store, RetainedStore)
    activity = unique("act")
    row = await store.claim_activity(activity, OWNER, [entry("generic", unique("evt"), 10)])
    await store.save_activity(
        noted(row, graph_write(0), graph_write(1)), [entry("generic", unique("evt"), 60)]
    )
    cutoff = await _pause()
    assert await compact_log(store, store.log_key(activity), cutoff, dry_run=False) == 1
    read = await store.activity(activity)
    assert read is not None
    assert read.writes == (graph_write(0), graph_write(1))


async def test_forgetting_a_learner_removes_their_records_graph_writes(store: MaintainedStore) -> None:
    activity = unique("act")
    learner = str(uuid.uuid4())
    owner = ActivityOwner("generic", learner, "course-101")
    row = await store.claim_activity(activity, owner, [entry("generic", unique("evt"))])
    await store.save_activity(noted(row, graph_write(0)))
    plan = await plan_forget(store, Learner.model_validate({"userId": learner}), learner)
    await forget(store, FakeGraph(), plan)
    assert await store.activity(activity) is None
    assert [a async for a in store.all_activities() if a.activity_id == activity] == []


async def test_a_delivery_keeps_when_its_event_was_received_and_how_its_learner_was_found(
    store: StateStore,
) -> None:
    event_id = unique("evt")
    first = DeliveryRecord("generic", event_id, "act", "applied", 1, received_at=T, learner_found_by="upn")
    await store.save_delivery(first)
    await store.void_delivery("generic", event_id, "void-1")
    await store.save_delivery(DeliveryRecord("generic", event_id, "act", "applied", 2))
    read = await store.delivery("generic", event_id)
    assert read == replace(first, seen=2, voided_by="void-1")


async def test_retention_drops_the_graph_writes_older_than_its_period_and_keeps_the_rest(
    store: MaintainedStore,
) -> None:
    assert isinstance(store, RetainedStore)
    activity = unique("act")
    row = await store.claim_activity(activity, OWNER, [entry("generic", unique("evt"))])
    await store.save_activity(noted(row, *[graph_write(n) for n in range(4)]))
    cutoff = T + timedelta(minutes=2)  # writes 0 and 1 are older
    log_key = store.log_key(activity)
    assert await drop_old_writes(store, log_key, cutoff, dry_run=True) == 2
    assert await drop_old_writes(store, log_key, cutoff, dry_run=False) == 2
    read = await store.activity(activity)
    assert read is not None
    assert read.writes == (graph_write(2), graph_write(3))
    assert await drop_old_writes(store, log_key, cutoff, dry_run=False) == 0
    assert fold(await store.events(activity)) is not None  # the log is untouched
