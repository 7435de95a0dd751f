"""Review 18c (issue 18, assigned learning): defects found in the changes since review 18b."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared.delivery.merge import deciding_statements, fold
from shared.events.model import AssignmentType, CourseStatus
from shared.operations.retention import baseline, compactable
from shared.state.models import AssignmentEntry, EventEntry
from tests.fakes import MemoryStateStore
from tests.unit.test_reconcile import GRACE_ID, assigned_record, by_content, run
from tests.unit.test_retention import entries, statements


async def test_repairing_a_record_whose_assigner_graph_spells_in_another_case_is_one_patch() -> None:
    """shared/operations/reconcile.py: "an object id in any case is the same id (no drift, and no
    re-creation on repair, for an assigner Graph spells in another case)"; docs/operate.md (reconcile):
    a changed field is repaired by the PATCH back to the events' fold, only a different type or assigner
    (which no PATCH can change) deletes and creates the record again. A record whose notes were edited
    in Graph, and whose assigner Graph spells in upper case, is repaired with one PATCH, not deleted."""
    graph, state, upserter, key = await assigned_record()
    graph.activities[key] = replace(
        graph.activities[key], notes="Edited in Graph.", assigner_user_id=GRACE_ID.upper()
    )
    graph.calls.clear()

    report = await run(graph, state, upserter, repair=True)

    assert [(d.kind, d.fields, d.repaired) for d in report.drift] == [("changed", ("notes",), True)]
    writes = [c for c in graph.calls if c in ("create_activity", "update_activity", "delete_activity")]
    assert writes == ["update_activity"]
    [repaired] = by_content(graph, "c-202")
    assert repaired.notes == "Before the audit."


@pytest.mark.parametrize("notes", ["   ", "\n\t"])
def test_the_json_schema_refuses_notes_of_whitespace_only_as_the_bridge_does(notes: str) -> None:
    """README: the body's JSON Schema (schemas/canonical-event.schema.json) is generated from the model
    and vendors validate against it; review 18b put the assignment's rules in it so that "a body the
    schema accepts is one the bridge accepts" (shared/events/model.py, Assignment). Notes are stripped
    and must keep at least one character: the bridge refuses notes of whitespace only with 400, which
    the schema's minLength 1 lets through."""
    import jsonschema
    from pydantic import ValidationError

    from shared.events.model import CanonicalEvent
    from tests.builders import event

    root = Path(__file__).resolve().parents[2]
    schema = json.loads((root / "schemas/canonical-event.schema.json").read_text())
    body = event(
        source="generic",
        status="notStarted",
        completionPercentage=None,
        assignment={"type": "required", "notes": notes},
    )
    with pytest.raises(ValidationError):
        CanonicalEvent.model_validate(body)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(body)), "the schema accepts them"


async def test_a_forget_of_an_assigner_that_a_worker_names_again_meanwhile_leaves_no_record_naming_them() -> (
    None
):
    """shared/operations/forget.py: the person's id leaves the other learners' records ("The other
    learner's assignment stays, without naming them"), and a run either finishes that or says what is
    left (`assignerPending`: "run forget again"). A worker applying an assignment statement that names
    Grace (queued before the request: her due-date move) between forget's scrub of the log and its
    re-creation puts her id back in the log, so the record forget creates names her again, and the
    receipt counts it as done."""
    from shared.operations.forget import forget, plan_forget
    from tests.builders import canonical
    from tests.unit.test_forget import BY_GRACE, GRACE, GRACE_ID, ada_record, assigned_by_grace

    graph, state, upserter = await assigned_by_grace(own=False)
    scrub = state.scrub_assigner
    moved = canonical(
        eventId="as2",
        occurredAt="2026-11-22T09:00:00Z",
        assignment={**BY_GRACE, "dueAt": "2027-01-31T17:00:00Z"},
    )

    async def scrub_then_a_worker_applies(activity_id: str, user_id: str) -> int:
        scrubbed = await scrub(activity_id, user_id)
        if scrubbed:
            await upserter.apply(moved)
        return scrubbed

    state.scrub_assigner = scrub_then_a_worker_applies  # type: ignore[method-assign]

    receipt = await forget(state, graph, await plan_forget(state, GRACE, GRACE_ID))

    named = ada_record(graph).assigner_user_id == GRACE_ID
    assert not (named and receipt.assigner_pending == 0), "the record names Grace, and forget says it is done"


async def test_an_assigner_named_by_account_on_a_source_without_account_attribute_keeps_the_event() -> None:
    """docs/connect/assignments.md: an assigner is left out only when "Entra cannot resolve (someone who
    has left)"; GUIDE: every accepted event is delivered or kept with its reason. A source without
    `accountAttribute` cannot resolve an `account` at all (shared/delivery/resolve.py:
    learnerNotResolvable, "set its accountAttribute option"): that is the source's configuration, not a
    person who left, and a learner so named is kept as a dead letter saying so. An assigner so named was
    dropped silently, the assignment written without them for good (a later fix of the option changes
    nothing: the event counts as applied)."""
    from shared.delivery import CourseActivityUpserter, PermanentFailure
    from tests.builders import USER_ID, canonical
    from tests.fakes import FakeGraph, MemoryStateStore

    graph = FakeGraph()
    graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    graph.contents["course-101"] = "c-101"
    upserter = CourseActivityUpserter(graph, MemoryStateStore())
    assigned = canonical(
        eventId="as1",
        status="notStarted",
        completionPercentage=None,
        assignment={
            "type": "required",
            "assigner": {"account": {"homePage": "https://lms.example", "name": "42"}},
        },
    )

    with pytest.raises(PermanentFailure) as kept:
        await upserter.apply(assigned)

    assert kept.value.reason == "learnerNotResolvable"
    assert graph.activities == {}


async def test_the_assigning_source_still_writes_its_record_once_progress_from_is_taken_out() -> None:
    """docs/connect/assignments.md: with `progressFrom`, the LMS's events are "keyed as if the assigning
    source had sent them", so the LMS's progress that comes first creates the record at the assigning
    source's own id (shared/events/identity.py: derived ids are "its source's alone"). Once the option
    is taken out (or the source set aside for it), that row still says the LMS owns it, and every event
    of the HR system for that learner and course, at its own derived id, was refused as
    activityOwnerMismatch (a dead letter for good) instead of updating the HR system's own record."""
    from shared.delivery import CourseActivityUpserter
    from tests.unit.test_progress_from import HR_TAKES_LMS, assigned_by_hr, graph, lms

    fake, state = graph(), MemoryStateStore()
    await CourseActivityUpserter(fake, state, progress_keys=HR_TAKES_LMS).apply(lms("l-1"))

    await CourseActivityUpserter(fake, state).apply(assigned_by_hr())

    [record] = fake.activities.values()
    assert (record.is_assignment, record.completion_percentage) == (True, 40)


@pytest.mark.parametrize("wall_time", ["2026-12-31T17:00:00.\u0660", "2026-12-31T17:00:00.000000\u0663"])
def test_the_sandbox_refuses_a_due_date_time_whose_fraction_is_not_written_in_ascii_digits(
    wall_time: str,
) -> None:
    """resources/datetimetimezone.md (RULES-assignments-providers.md): dateTime is "{date}T{time}", e.g.
    2017-08-29T04:00:00.0000000, an ISO 8601 time whose digits are 0-9. rules._DATE_T_TIME reads `\\d`,
    which in a Python str pattern is any Unicode decimal digit, and only the part before the fraction
    goes through fromisoformat: a fraction in Arabic-Indic digits passes the sandbox."""
    from devtools.graph_sandbox import rules
    from devtools.graph_sandbox.errors import GraphHttpError

    with pytest.raises(GraphHttpError):
        rules.check_assignment_fields({"dueDateTime": {"dateTime": wall_time, "timeZone": "UTC"}})


async def test_forgetting_the_newest_assigner_leaves_the_one_an_earlier_statement_named() -> None:
    """docs/operate.md (forget) said "the other learner's assignment stays, without an assigner"; since
    review 18b a statement whose assigner is not stated (or not found: someone who left) keeps the one
    an earlier statement since the last withdrawal named (docs/connect/assignments.md), and forget's
    scrub leaves her statements so. Alan assigned the course, Grace moved it later: forgetting Grace
    leaves Alan as its assigner (the docs now say so)."""
    from shared.operations.forget import forget, plan_forget
    from tests.builders import canonical
    from tests.unit.test_forget import BY_GRACE, GRACE, GRACE_ID, ada_record, assigned_by_grace

    alan_id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    graph, state, upserter = await assigned_by_grace(own=False)
    graph.users_by_mail["alan@contoso.example"] = alan_id
    earlier = canonical(
        eventId="as0",
        occurredAt="2026-11-01T09:00:00Z",
        status="notStarted",
        completionPercentage=None,
        assignment={**BY_GRACE, "assigner": {"email": "alan@contoso.example"}},
    )
    await upserter.apply(earlier)
    assert ada_record(graph).assigner_user_id == GRACE_ID

    await forget(state, graph, await plan_forget(state, GRACE, GRACE_ID))

    assert ada_record(graph).assigner_user_id == alan_id


def _scrubbed(entries: list[EventEntry], user_id: str) -> list[EventEntry]:
    """The log as forget leaves it: no statement names `user_id` as its assigner any more."""
    return [
        replace(e, assignment=replace(e.assignment, assigner_user_id=None))
        if e.assignment is not None and e.assignment.assigned_by(user_id)
        else e
        for e in entries
    ]


def _statement(day: int, assigner: str | None) -> EventEntry:
    return EventEntry(
        "generic",
        f"s{day}",
        datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=day),
        CourseStatus.NOT_STARTED,
        assignment=AssignmentEntry(assignment_type=AssignmentType.REQUIRED, assigner_user_id=assigner),
    )


@given(
    st.lists(entries() | statements(), max_size=10),
    st.lists(entries() | statements(), max_size=4),
    st.sampled_from(["grace-id", "alan-id"]),
)
@example(  # assigned (nobody named), Alan restates it, Grace moves it, a restatement without assigner
    [_statement(0, None), _statement(1, "alan-id"), _statement(2, "grace-id"), _statement(3, None)],
    [],
    "grace-id",
)
def test_a_log_retention_folded_forgets_an_assigner_as_the_whole_log_does(
    old: list[EventEntry], recent: list[EventEntry], forgotten: str
) -> None:
    """shared/operations/retention.py: "fold(baseline + newer entries) is exactly fold(old + newer
    entries)"; merge.deciding_statements: taking out any other statement's assignment "changes
    nothing, and stays so". forget takes a person out of the log's statements (docs/operate.md), and
    the assigner then is the one an earlier statement named: one retention had folded away (it kept
    only the newest statement naming an assigner), so after retention the learner's assignment lost
    its earlier assigner where the whole log keeps them."""
    log = old + recent
    deciding = deciding_statements(e for e in log if e.voided_by is None)
    folded = [e for e in old if compactable(e, deciding)]
    kept = [e for e in old if not compactable(e, deciding)]
    base = baseline(folded)
    compacted = ([base] if base else []) + kept + recent
    assert fold(_scrubbed(compacted, forgotten)) == fold(_scrubbed(log, forgotten))


@pytest.mark.xfail(
    strict=True,
    reason=(
        "not fixed in review 18c: progressFrom keys the named source's events by learner and course as "
        "the assigning source's derived id, which a record sent with its own externalCourseActivityId "
        "does not have; joining them needs a learner-and-course index of explicit-id records. "
        "docs/connect/assignments.md says so."
    ),
)
async def test_progress_from_reaches_an_assignment_its_source_sent_with_its_own_id() -> None:
    """ISSUE-18: "later progress and completions (from the same source, or from a source its options
    name) update that assignment, never a second, self-initiated record". An HR system that names its
    assignments (`externalCourseActivityId`, as systems with their own assignment ids do) and takes
    the LMS's progress (`progressFrom`) gets the LMS's progress as a second, self-initiated record."""
    from tests.unit.test_progress_from import ASSIGNMENT, HR_TAKES_LMS, from_source, lms
    from tests.unit.test_progress_from import run as run_events

    assigned = from_source(
        "hr",
        eventId="hr-1",
        status="notStarted",
        completionPercentage=None,
        assignment=ASSIGNMENT,
        externalCourseActivityId="hr-assignment-7",
    )
    fake = await run_events([assigned, lms("l-1")], HR_TAKES_LMS)
    [record] = fake.activities.values()
    assert (record.is_assignment, record.completion_percentage) == (True, 40)
