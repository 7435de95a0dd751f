"""Forgetting a learner, over the unit fakes (the store's maintenance methods are bound to Azurite by
tests/contract/test_state_contract.py; the whole command runs end to end in tests/e2e)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.delivery import CourseActivityUpserter, PermanentFailure
from shared.delivery.deadletters import DeadLetters
from shared.events.model import CanonicalEvent, Learner
from shared.events.queue import QueuedEvent
from shared.graph.errors import GraphError
from shared.graph.gateway import ActivityRecord
from shared.operations.forget import forget, plan_forget
from shared.state.models import DeliveryRecord
from tests.builders import USER_ID, canonical
from tests.cli_harness import Backends, fake_backends, run_cli, write_settings
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore

ADA = Learner(email="ada.lovelace@contoso.example")
GRACE_ID = "7e2d9b4c-3a1f-4c8e-b6d2-0f9e8d7c6b5a"


make = canonical  # a generic-source event, fields overridden


async def setup() -> tuple[FakeGraph, MemoryStateStore, CourseActivityUpserter]:
    graph = FakeGraph()
    graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    graph.users_by_mail["grace@contoso.example"] = GRACE_ID
    graph.contents.update({"course-101": "c-101", "course-202": "c-202"})
    state = MemoryStateStore()
    upserter = CourseActivityUpserter(graph, state)
    await upserter.apply(make(eventId="a1"))
    await upserter.apply(make(eventId="a2", status="completed", completionPercentage=None))
    await upserter.apply(make(eventId="a3", course={"externalId": "course-202"}))
    await upserter.apply(make(eventId="g1", learner={"email": "grace@contoso.example"}))
    return graph, state, upserter


async def park(state: MemoryStateStore, body: CanonicalEvent) -> None:
    message = QueuedEvent(event=body, received_at=datetime.now(UTC)).model_dump_json(by_alias=True)
    letters = DeadLetters(state, FakeQueue(), timedelta(hours=72))
    await letters.record(body.source, body.event_id, message, PermanentFailure("contentNotFound", "x"))
    await state.save_delivery(DeliveryRecord(body.source, body.event_id, "", "failed"))  # as the worker does


async def test_the_learner_s_records_and_rows_go_and_others_stay() -> None:
    graph, state, _ = await setup()
    await park(state, make(eventId="a4", course={"externalId": "course-unknown"}))
    await park(state, make(eventId="g2", learner={"email": "grace@contoso.example"}))
    plan = await plan_forget(state, ADA, USER_ID)
    receipt = await forget(state, graph, plan)
    assert receipt.to_json() == {
        "graphRecords": 2,
        "graphRecordsAlreadyGone": 0,
        "activities": 2,
        "eventLogEntries": 3,
        "deliveries": 4,
        "deadLetters": 1,
        "assignerRecords": 0,
        "assignerEntries": 0,
        "assignerLetters": 0,
        "assignerPending": 0,
    }
    assert [r.learner_user_id for r in graph.activities.values()] == [GRACE_ID]
    assert {k[1] for k in state.deliveries_by_key} == {"g1", "g2"}
    assert {k[1] for k in state.letters} == {"g2"}
    assert all(a.owner is not None and a.owner.learner_user_id == GRACE_ID for a in state.activities.values())


async def test_a_dry_run_plan_changes_nothing_and_a_second_forget_finds_nothing() -> None:
    graph, state, _ = await setup()
    plan = await plan_forget(state, ADA, USER_ID)
    assert plan.counts().activities == 2
    assert len(graph.activities) == 3
    await forget(state, graph, plan)
    again = await plan_forget(state, ADA, USER_ID)
    assert again.counts().to_json() == dict.fromkeys(again.counts().to_json(), 0)


async def test_a_record_already_deleted_in_graph_is_counted_apart() -> None:
    graph, state, _ = await setup()
    graph.activities = {k: r for k, r in graph.activities.items() if r.learner_user_id != USER_ID}
    receipt = await forget(state, graph, await plan_forget(state, ADA, USER_ID))
    assert (receipt.graph_records, receipt.graph_records_already_gone) == (0, 2)


async def test_a_later_event_for_the_learner_is_applied_as_a_new_record() -> None:
    graph, state, upserter = await setup()
    await forget(state, graph, await plan_forget(state, ADA, USER_ID))
    await upserter.apply(make(eventId="a5", completionPercentage=10))
    mine = [r for r in graph.activities.values() if r.learner_user_id == USER_ID]
    assert [(r.completion_percentage, r.learning_content_id) for r in mine] == [(10, "c-101")]


# ---- a departed employee: the account is already deleted from Entra ------------------------------


async def fail_as_the_worker_does(
    state: MemoryStateStore, upserter: CourseActivityUpserter, body: CanonicalEvent
) -> None:
    """Apply the event; when it fails for good, park it as the queue worker does."""
    try:
        await upserter.apply(body)
    except PermanentFailure as failure:
        message = QueuedEvent(event=body, received_at=datetime.now(UTC)).model_dump_json(by_alias=True)
        await DeadLetters(state, FakeQueue()).record(body.source, body.event_id, message, failure)
        await upserter.mark(body.source, body.event_id, "failed")


def departed(tmp_path: Path) -> tuple[Backends, list[str]]:
    """Ada's records and rows as the bridge left them (one event parked for a course Viva Learning does
    not know), then her account deleted from Entra, then one more event for her (parked: no such
    learner any more, named by her email)."""
    fakes = Backends()

    async def prepare() -> None:
        graph, state = fakes.graph, fakes.store
        graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
        graph.users_by_mail["grace@contoso.example"] = GRACE_ID
        graph.contents.update({"course-101": "c-101", "course-202": "c-202"})
        upserter = CourseActivityUpserter(graph, state)
        await upserter.apply(make(eventId="a1"))
        await upserter.apply(make(eventId="a2", course={"externalId": "course-202"}))
        await upserter.apply(make(eventId="g1", learner={"email": "grace@contoso.example"}))
        await fail_as_the_worker_does(state, upserter, make(eventId="a3", course={"externalId": "course-x"}))
        del graph.users_by_mail["ada.lovelace@contoso.example"]
        await fail_as_the_worker_does(state, CourseActivityUpserter(graph, state), make(eventId="a4"))
        assert {k[1]: v.reason for k, v in state.letters.items()} == {
            "a3": "contentNotFound",
            "a4": "learnerNotFound",
        }

    asyncio.run(prepare())
    return fakes, ["--settings", str(write_settings(tmp_path))]


def test_forgetting_a_deleted_account_by_user_id_removes_its_records_and_rows(tmp_path: Path) -> None:
    fakes, settings = departed(tmp_path)
    with fake_backends(fakes):
        outcome = run_cli([*settings, "forget", "--learner", "userId", USER_ID, "--yes", "--json"])
    assert outcome.code == 0, outcome
    assert json.loads(outcome.out) == {
        "dryRun": False,
        "graphRecords": 2,
        "graphRecordsAlreadyGone": 0,
        "activities": 3,
        "eventLogEntries": 3,
        "deliveries": 3,
        "deadLetters": 1,
        "assignerRecords": 0,
        "assignerEntries": 0,
        "assignerLetters": 0,
        "assignerPending": 0,
    }
    assert "Entra has no user with that object id" in outcome.err
    assert outcome.error_lines == []
    assert [r.learner_user_id for r in fakes.graph.activities.values()] == [GRACE_ID]
    assert all(
        a.owner is not None and a.owner.learner_user_id == GRACE_ID for a in fakes.store.activities.values()
    )
    # What came after the deletion names her by email only: the email's own run removes it (below).
    assert {k[1] for k in fakes.store.deliveries_by_key} == {"g1", "a4"}
    assert {k[1] for k in fakes.store.letters} == {"a4"}


def test_forgetting_a_deleted_account_by_email_removes_the_letters_naming_it_and_says_what_is_left(
    tmp_path: Path,
) -> None:
    fakes, settings = departed(tmp_path)
    with fake_backends(fakes):
        outcome = run_cli(
            [*settings, "forget", "--learner", "email", "ada.lovelace@contoso.example", "--yes"]
        )
    assert outcome.code == 1, outcome
    assert outcome.out.startswith("forgotten: 0 Graph course activities")
    assert "2 dead letters" in outcome.out
    assert outcome.error_lines == []
    assert "--learner userId" in outcome.err
    assert fakes.store.letters == {}
    assert len(fakes.graph.activities) == 3  # her records need her object id


# ---- the person as the assigner of other learners' courses (issue 18) ----------------------------

GRACE = Learner(email="grace@contoso.example")
BY_GRACE = {
    "type": "required",
    "dueAt": "2026-12-31T17:00:00Z",
    "assigner": {"email": "grace@contoso.example"},
}


async def assigned_by_grace(own: bool = True) -> tuple[FakeGraph, MemoryStateStore, CourseActivityUpserter]:
    """Grace assigned course-101 to Ada, who is 40 % through it; Grace's own course-202 activity
    (`own`)."""
    graph = FakeGraph()
    graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    graph.users_by_mail["grace@contoso.example"] = GRACE_ID
    graph.contents.update({"course-101": "c-101", "course-202": "c-202"})
    state = MemoryStateStore()
    upserter = CourseActivityUpserter(graph, state)
    await upserter.apply(
        make(eventId="as1", status="notStarted", completionPercentage=None, assignment=BY_GRACE)
    )
    await upserter.apply(make(eventId="p1", occurredAt="2026-11-21T09:00:00Z", completionPercentage=40))
    if own:
        await upserter.apply(
            make(
                eventId="g1", learner={"email": "grace@contoso.example"}, course={"externalId": "course-202"}
            )
        )
    return graph, state, upserter


def ada_record(graph: FakeGraph) -> ActivityRecord:
    [record] = [r for r in graph.activities.values() if r.learner_user_id == USER_ID]
    return record


async def test_forgetting_an_assigner_creates_the_learner_s_assignment_again_without_them() -> None:
    """The Update page lets no PATCH change assignerUserId: the record is deleted and created again,
    still a required assignment with its due date, carrying Ada's progress."""
    graph, state, _ = await assigned_by_grace()
    before = ada_record(graph)
    assert before.assigner_user_id == GRACE_ID
    graph.calls.clear()

    receipt = await forget(state, graph, await plan_forget(state, GRACE, GRACE_ID))

    after = ada_record(graph)
    assert after.id != before.id
    assert (after.assigner_user_id, after.assignment_type, after.due_at) == (None, "required", before.due_at)
    assert (after.status, after.completion_percentage) == (before.status, 40)
    assert after.assigned_at == before.assigned_at
    assert [r.learner_user_id for r in graph.activities.values()] == [USER_ID]  # Grace's own went
    assert graph.calls.count("create_activity") == 1
    [row] = state.activities.values()
    assert (row.graph_id, row.assigner_user_id, row.assignment_type) == (after.id, None, "required")
    assert (receipt.assigner_records, receipt.assigner_entries, receipt.assigner_pending) == (1, 1, 0)


async def test_a_dry_run_counts_what_names_the_assigner_and_changes_nothing() -> None:
    graph, state, _ = await assigned_by_grace()
    counts = (await plan_forget(state, GRACE, GRACE_ID)).counts()
    assert (counts.assigner_records, counts.assigner_entries, counts.activities) == (1, 1, 1)
    assert ada_record(graph).assigner_user_id == GRACE_ID


class Killed(Exception):
    """The process dies here (nothing below catches it)."""


@pytest.mark.parametrize("step", ["delete_activity", "get_activity", "create_activity"])
async def test_a_forget_of_an_assigner_cut_short_is_finished_by_running_it_again(step: str) -> None:
    """Killed at the DELETE of Ada's record (its log no longer names Grace, its row does), at the
    lookup before the POST (the record deleted, the row without Graph id), and at the POST itself."""
    graph, state, _ = await assigned_by_grace(own=False)
    graph.errors[step].append(Killed())
    with pytest.raises(Killed):
        await forget(state, graph, await plan_forget(state, GRACE, GRACE_ID))

    receipt = await forget(state, graph, await plan_forget(state, GRACE, GRACE_ID))

    after = ada_record(graph)
    assert (after.assigner_user_id, after.assignment_type, after.completion_percentage) == (
        None,
        "required",
        40,
    )
    assert receipt.assigner_pending == 0
    again = (await plan_forget(state, GRACE, GRACE_ID)).counts()
    assert again.to_json() == dict.fromkeys(again.to_json(), 0)
    assert not [a for a in state.activities.values() if a.assigner_user_id == GRACE_ID]


async def test_an_assignment_graph_refuses_to_create_again_is_pending_until_forget_runs_again() -> None:
    """The record is deleted (Grace's id leaves Graph first); the row keeps naming her, so the next
    run finds it and creates it."""
    graph, state, _ = await assigned_by_grace()
    graph.errors["create_activity"].append(GraphError(400, "badRequest", "Input field status is invalid"))

    first = await forget(state, graph, await plan_forget(state, GRACE, GRACE_ID))

    assert first.assigner_pending == 1
    assert [r.learner_user_id for r in graph.activities.values()] == []
    second = await forget(state, graph, await plan_forget(state, GRACE, GRACE_ID))
    assert (second.assigner_records, second.assigner_pending) == (1, 0)
    assert ada_record(graph).assigner_user_id is None


async def test_a_parked_assignment_naming_the_assigner_stays_replayable_without_them() -> None:
    graph, state, _ = await assigned_by_grace()
    parked = make(
        eventId="as2",
        status="notStarted",
        completionPercentage=None,
        course={"externalId": "course-not-in-viva-yet"},
        assignment=BY_GRACE,
    )
    await park(state, parked)

    receipt = await forget(state, graph, await plan_forget(state, GRACE, GRACE_ID))

    assert receipt.assigner_letters == 1
    [letter] = state.letters.values()
    kept = QueuedEvent.model_validate_json(letter.message).event
    assert kept is not None
    assert kept.assignment is not None
    assert (kept.event_id, kept.assignment.type, kept.assignment.assigner) == ("as2", "required", None)
    assert "grace" not in letter.message


def test_the_cli_exits_1_and_says_to_run_again_while_an_assignment_still_names_the_assigner(
    tmp_path: Path,
) -> None:
    fakes = Backends()

    async def prepare() -> None:
        graph, state, _ = await assigned_by_grace(own=False)
        fakes.graph.users_by_mail.update(graph.users_by_mail)
        fakes.graph.contents.update(graph.contents)
        fakes.graph.activities.update(graph.activities)
        fakes.store.activities.update(state.activities)
        fakes.store.event_log.update(state.event_log)

    asyncio.run(prepare())
    settings = ["--settings", str(write_settings(tmp_path))]
    fakes.graph.errors["create_activity"].append(
        GraphError(400, "badRequest", "Input field status is invalid")
    )
    with fake_backends(fakes):
        first = run_cli([*settings, "forget", "--learner", "email", "grace@contoso.example", "--yes"])
        second = run_cli(
            [*settings, "forget", "--learner", "email", "grace@contoso.example", "--yes", "--json"]
        )
    assert first.code == 1, first
    assert "run the same forget again" in first.err
    assert GRACE_ID not in first.out + first.err
    assert second.code == 0, second
    assert (json.loads(second.out)["assignerRecords"], json.loads(second.out)["assignerPending"]) == (1, 0)
    [record] = fakes.graph.activities.values()
    assert (record.learner_user_id, record.assigner_user_id) == (USER_ID, None)
