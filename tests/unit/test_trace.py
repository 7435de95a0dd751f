"""`trace --learner KIND VALUE`: the story of a learner's course activities, through the CLI over the
unit tests' fakes (issue 19): events in time order and their deliveries, what they call for, what was
written, what Graph has now, parked events with their reason and the command that replays them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from shared.delivery import CourseActivityUpserter, EventWorker
from shared.delivery.deadletters import DeadLetters
from shared.events.queue import QueuedEvent, Voiding
from tests.builders import USER_ID
from tests.cli_harness import Backends, fake_backends, run_cli, write_settings
from tests.unit.test_event_worker import NOW, Clock, message

EMAIL = "ada.lovelace@contoso.example"


def stocked() -> Backends:
    """Ada: course-101 created then completed; a statement for course-202 parked (no licence yet)."""
    fakes = Backends()
    fakes.graph.users_by_mail[EMAIL] = USER_ID
    fakes.graph.users_by_upn[EMAIL] = USER_ID
    fakes.graph.contents.update({"course-101": "content-101", "course-202": "content-202"})
    clock = Clock()
    letters = DeadLetters(fakes.store, fakes.queue, timedelta(hours=72), clock)
    worker = EventWorker(
        CourseActivityUpserter(fakes.graph, fakes.store, clock=clock), letters, fakes.queue, clock
    )

    async def run() -> None:
        await worker.process(message(eventId="started", occurredAt="2026-11-20T14:03:00Z"), 1)
        done = message(
            eventId="finished",
            occurredAt="2026-11-21T09:00:00Z",
            status="completed",
            completionPercentage=100,
        )
        await worker.process(done, 1)
        fakes.graph.unlicensed.add(USER_ID)
        await worker.process(message(eventId="other-course", course={"externalId": "course-202"}), 1)

    asyncio.run(run())
    return fakes


def test_trace_tells_each_activitys_story_and_the_parked_event_with_its_replay(tmp_path: Path) -> None:
    fakes = stocked()
    with fake_backends(fakes):
        outcome = run_cli(["--settings", str(write_settings(tmp_path)), "trace", "--learner", "email", EMAIL])
    assert outcome.code == 0, outcome.err
    out = outcome.out
    assert "(course course-101, source generic)" in out
    started, finished = out.index("generic:started"), out.index("generic:finished")
    assert started < finished  # in time order
    assert "the events call for: completed, 100%" in out
    assert "last written to Graph: completed, 100%" in out
    assert "Graph has now: completed, 100%" in out
    assert "Graph has now: no record" in out
    assert "parked generic:other-course (learnerNotLicensed" in out
    assert "course course-202" in out
    assert "replay: python -m shared.cli replay generic:other-course" in out
    assert USER_ID not in out  # nothing personal beyond what was typed


def test_trace_as_json_and_filtered_by_course(tmp_path: Path) -> None:
    fakes = stocked()
    with fake_backends(fakes):
        argv = ["--settings", str(write_settings(tmp_path)), "trace", "--learner", "upn", EMAIL]
        outcome = run_cli([*argv, "--course", "course-202", "--json"])
    assert outcome.code == 0, outcome.err
    document = json.loads(outcome.out)
    [story] = document["activities"]  # the parked event joined its activity's log; nothing written yet
    assert (story["course"], story["written"], story["graph_now"]) == (
        "course-202",
        "nothing yet",
        "no record",
    )
    [letter] = story["letters"]
    assert (letter["id"], letter["reason"], letter["state"]) == (
        "generic:other-course",
        "learnerNotLicensed",
        "parked",
    )
    assert document["waiting"] == []
    assert USER_ID not in outcome.out


def test_trace_of_nobody_says_so_and_exits_1(tmp_path: Path) -> None:
    with fake_backends(Backends()):
        argv = [
            "--settings",
            str(write_settings(tmp_path)),
            "trace",
            "--learner",
            "email",
            "nobody@contoso.example",
        ]
        outcome = run_cli(argv)
    assert outcome.code == 1
    assert "nothing found" in outcome.out
    bad = run_cli(["--settings", str(write_settings(tmp_path)), "trace", "--learner", "phone", "1"])
    assert bad.code == 2


def lived_through() -> Backends:
    """Ada's course-101 record: created, updated (completed), the completion voided (the record goes
    back), then a later statement parked (her licence was taken away meanwhile)."""
    fakes = Backends()
    fakes.graph.users_by_mail[EMAIL] = USER_ID
    fakes.graph.contents.update({"course-101": "content-101"})
    clock = Clock()
    letters = DeadLetters(fakes.store, fakes.queue, timedelta(hours=72), clock)
    worker = EventWorker(
        CourseActivityUpserter(fakes.graph, fakes.store, clock=clock), letters, fakes.queue, clock
    )

    async def run() -> None:
        await worker.process(message(eventId="started", occurredAt="2026-11-20T14:03:00Z"), 1)
        clock.now += timedelta(minutes=1)
        done = message(
            eventId="finished",
            occurredAt="2026-11-21T09:00:00Z",
            status="completed",
            completionPercentage=100,
        )
        await worker.process(done, 1)
        clock.now += timedelta(minutes=1)
        void = Voiding(source="generic", voided_event_id="finished", voiding_event_id="void-1")
        await worker.process(QueuedEvent(void=void, received_at=NOW).model_dump_json(by_alias=True), 1)
        clock.now += timedelta(minutes=1)
        fakes.graph.unlicensed.add(USER_ID)
        later = message(eventId="later", occurredAt="2026-11-22T10:00:00Z", completionPercentage=50)
        await worker.process(later, 1)

    asyncio.run(run())
    return fakes


def test_trace_shows_every_graph_write_of_a_record_with_its_status_in_time_order(tmp_path: Path) -> None:
    """The issue's story: created, updated, a voided statement, a parked event; each write with
    Graph's answer (or the reason it was refused) and the event that called for it."""
    fakes = lived_through()
    argv = ["--settings", str(write_settings(tmp_path)), "trace", "--learner", "email", EMAIL]
    with fake_backends(fakes):
        shown = run_cli(argv)
        as_json = run_cli([*argv, "--json"])
    assert shown.code == 0, shown.err
    [story] = json.loads(as_json.out)["activities"]
    assert [(w["request"], w["status"], w["reason"], w["for"]) for w in story["graph_writes"]] == [
        ("create", 201, None, "generic:started"),
        ("patch", 204, None, "generic:finished"),
        ("patch", 204, None, "generic:void-1"),
        ("patch", 403, "learnerNotLicensed", "generic:later"),
    ]
    times = [w["at"] for w in story["graph_writes"]]
    assert times == sorted(times)
    assert len(set(times)) == 4
    [letter] = story["letters"]
    assert (letter["id"], letter["state"]) == ("generic:later", "parked")
    lines = shown.out.splitlines()
    writes = lines[lines.index("  Graph writes:") + 1 :][:4]
    assert "create Graph 201 ok for generic:started" in writes[0]
    assert "patch  Graph 204 ok for generic:void-1" in writes[2]
    assert "patch  Graph 403 learnerNotLicensed for generic:later" in writes[3]
    assert USER_ID not in shown.out + as_json.out


def test_trace_tells_when_the_bridge_received_each_event_and_how_its_learner_was_found(
    tmp_path: Path,
) -> None:
    """The queue message's receivedAt and the Entra attribute the learner matched on, kept in the
    event's delivery row (the first copy applied)."""
    fakes = lived_through()
    argv = ["--settings", str(write_settings(tmp_path)), "trace", "--learner", "email", EMAIL]
    with fake_backends(fakes):
        shown = run_cli(argv)
        as_json = run_cli([*argv, "--json"])
    [story] = json.loads(as_json.out)["activities"]
    received = {e["id"]: e["receivedAt"] for e in story["events"]}
    expected = NOW.isoformat().replace("+00:00", "Z")
    assert received["generic:started"] == received["generic:finished"] == expected
    assert "generic:later" not in received  # parked: not in the log yet (its letter says when received)
    assert {e["learnerFoundBy"] for e in story["events"]} == {"email (mail)"}
    assert f"[applied, received {expected}, learner found by email (mail)]" in shown.out


def test_trace_reads_only_the_learners_own_records_never_scanning_for_them_as_an_assigner(
    tmp_path: Path,
) -> None:
    """trace tells the learner's own course activities; the scan of the whole activities table for the
    person as another learner's assigner is forget's (plan_forget(as_assigner=False))."""
    fakes = stocked()
    scanned: list[str] = []

    async def assigner_activities(user_id: str) -> AsyncIterator[str]:
        scanned.append(user_id)
        return
        yield

    fakes.store.assigner_activities = assigner_activities  # type: ignore[method-assign]
    with fake_backends(fakes):
        outcome = run_cli(["--settings", str(write_settings(tmp_path)), "trace", "--learner", "email", EMAIL])
    assert outcome.code == 0, outcome.err
    assert scanned == []
