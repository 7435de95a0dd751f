"""Review of issue 18 (assigned learning): defects found by trying to break it. Each test fails on the
code as reviewed and says which README line or Graph page the behaviour contradicts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shared.delivery import CourseActivityUpserter
from shared.events.model import Assignment, AssignmentType, CanonicalEvent, CourseStatus
from shared.graph.gateway import ActivityRecord, ActivityWrite, due_to_json
from shared.operations.importing import _event, _from_columns
from tests.builders import USER_ID, canonical, event
from tests.fakes import FakeGraph, MemoryStateStore

GRACE_ID = "grace-id"
BOB_ID = "bob-id"


def _graph() -> FakeGraph:
    fake = FakeGraph()
    fake.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    fake.users_by_upn["grace@contoso.example"] = GRACE_ID
    fake.users_by_upn["bob@contoso.example"] = BOB_ID
    fake.contents["course-101"] = "content-101"
    return fake


def _assigned(event_id: str, at: str, assigner: str, due: str) -> CanonicalEvent:
    return canonical(
        eventId=event_id,
        occurredAt=at,
        status="notStarted",
        completionPercentage=None,
        assignment={"type": "required", "dueAt": due, "assigner": {"upn": assigner}},
    )


async def _record_after(events: list[CanonicalEvent]) -> ActivityRecord:
    graph = _graph()
    upserter = CourseActivityUpserter(graph, MemoryStateStore())
    for item in events:
        await upserter.apply(item)
    [record] = graph.activities.values()
    return record


# --- order-freedom --------------------------------------------------------------------------------


async def test_the_assigner_in_graph_does_not_depend_on_the_order_statements_arrive() -> None:
    """README "Assigned courses": "Duplicates, reordering and voided statements end in the same
    record", and "The newest one (by occurredAt ...) wins". But the assigner is only ever written by the
    POST (the Update page cannot change assignerUserId) and a new assigner triggers no delete and create
    (merge.same_kind compares assignmentType only): the record Graph keeps names whichever statement
    happened to arrive first. Manager Grace assigns the course, then Bob re-assigns it with a new due
    date: in time order Graph says Grace (and the state row says Bob, so the row no longer says what
    Graph holds); reordered, Graph says Bob. Two orders, two different Graph records."""
    first = _assigned("s1", "2026-11-02T09:00:00Z", "grace@contoso.example", "2026-12-31T17:00:00Z")
    second = _assigned("s2", "2026-11-09T09:00:00Z", "bob@contoso.example", "2027-01-31T17:00:00Z")
    in_order = await _record_after([first, second])
    reordered = await _record_after([second, first])
    assert in_order.due_at == reordered.due_at  # the due date does follow the newest statement
    assert in_order.assigner_user_id == reordered.assigner_user_id, (
        f"in time order Graph names {in_order.assigner_user_id}, reordered {reordered.assigner_user_id}"
    )


# --- due dates ------------------------------------------------------------------------------------


def _assigned_doc(**assignment: Any) -> dict[str, Any]:
    return event(
        eventId="far-1",
        source="generic",
        status="notStarted",
        completionPercentage=None,
        assignment={"type": "required", **assignment},
    )


@pytest.mark.parametrize(
    ("due_date", "zone"),
    [("9999-12-31", "America/New_York"), ("9999-12-31", "Pacific/Honolulu")],
)
def test_a_due_date_that_falls_outside_utc_s_range_is_an_invalid_field(due_date: str, zone: str) -> None:
    """README, "Limits, for every format": "Timestamps that cannot be represented in UTC
    (0001-01-01T00:00:00+01:00, 9999-12-31T23:59:59-01:00, ...) are invalid fields, not crashes". A
    `dueDate` + `timeZone` is only converted to UTC on the queue side (Assignment.due_utc, called by
    merge.contribution), so 9999-12-31 in New York (10000-01-01T04:59:59Z) passes validation, the webhook
    answers 202, and every attempt of the worker raises ValueError until the event is dead-lettered as
    retriesExhausted: an event that can never be delivered, accepted instead of refused with 400.
    (The low end cannot overflow: the end of 0001-01-01 is within UTC's range in every zone; the last
    day, 9999-12-31, is accepted where its end is, e.g. in Tokyo.)"""
    with pytest.raises(ValidationError):
        CanonicalEvent.model_validate(_assigned_doc(dueDate=due_date, timeZone=zone))
    CanonicalEvent.model_validate(_assigned_doc(dueDate="9999-12-31", timeZone="Asia/Tokyo"))
    CanonicalEvent.model_validate(_assigned_doc(dueDate="0001-01-01", timeZone="Pacific/Kiritimati"))


@pytest.mark.parametrize(
    ("due_date", "zone"),
    [
        # DST ends at 24:00 on Saturday 4 April 2026: the day has 25 hours and 23:59:59 happens twice.
        (date(2026, 4, 4), "America/Santiago"),
        # DST ends at 00:00 on Sunday 25 October 2026 in Beirut: the same on Saturday 24 October.
        (date(2026, 10, 24), "Asia/Beirut"),
        # DST starts at 23:00 -02 on Saturday 28 March 2026: that day has no 23:59:59 at all.
        (date(2026, 3, 28), "America/Scoresbysund"),
    ],
)
def test_a_due_date_means_the_last_second_of_that_day_in_its_zone_across_dst_changes(
    due_date: date, zone: str
) -> None:
    """README canonical table: `dueDate` with `timeZone` means "the end of that day there (23:59:59)".
    Assignment.due_utc combines the date with 23:59:59 and fold=0: on a day whose clocks go back at
    midnight (Santiago, Beirut) that is the first of two 23:59:59s, an hour before the day ends, so a
    learner finishing at 23:30 of the repeated hour is already overdue in Viva Learning; on a day whose
    clocks jump forward at 23:00 (Scoresbysund) 23:59:59 does not exist and the result is 00:59:59 of
    the next day, after the due day. The due instant must be on the due date there, and one second
    later must be the next day."""
    due = Assignment(type="required", due_date=due_date, time_zone=zone).due_utc()
    assert due is not None
    tz = ZoneInfo(zone)
    assert due.astimezone(tz).date() == due_date, f"{due} is {due.astimezone(tz)} there"
    assert (due + timedelta(seconds=1)).astimezone(tz).date() > due_date, (
        f"{due} ({due.astimezone(tz)}) is not the end of {due_date}: the day goes on until "
        f"{(due + timedelta(hours=1)).astimezone(tz)}"
    )


def test_a_due_date_before_year_1000_is_written_as_a_dateTimeTimeZone_graph_can_read() -> None:
    """resources/datetimetimezone: `dateTime` is "{date}T{time}" in ISO 8601 (yyyy-MM-ddTHH:mm:ss);
    the Create example writes "2022-09-22T16:05:00.0000000". gateway.due_to_json formats with %Y, which
    glibc does not pad: a dueAt of 0999-06-01 (accepted at ingest, it is representable in UTC) goes out
    as "999-06-01T00:00:00.0000000", which the sandbox (rules.check_assignment_fields) refuses with 400
    "Input field dueDateTime is invalid": the event is dead-lettered, and on a type switch (a
    self-initiated record being assigned) the DELETE has already removed the learner's record."""
    written = due_to_json(datetime(999, 6, 1, tzinfo=UTC))
    assert written["dateTime"] == "0999-06-01T00:00:00.0000000"


# --- import ---------------------------------------------------------------------------------------


def test_an_import_line_with_assignment_withdrawn_false_is_plain_progress() -> None:
    """README, `import`: the CSV columns include "`assignmentWithdrawn` (`true`)", empty cells being
    absent. A spreadsheet's boolean column holds false on the lines that withdraw nothing: such a line
    (plain progress, no other assignment cell) becomes `"assignment": {"withdrawn": "false"}` and is
    refused as invalid ("an assignment needs its type"), so a mixed file of progress and withdrawals
    loses every progress line. `false` there says "not withdrawn", i.e. no assignment statement."""
    row = {
        "eventId": "p-1",
        "occurredAt": "2026-11-20T14:03:00Z",
        "learnerEmail": "ada.lovelace@contoso.example",
        "courseId": "course-101",
        "status": "inProgress",
        "completionPercentage": "40",
        "assignmentType": "",
        "assignmentWithdrawn": "false",
    }
    _where, item = _event(_from_columns(row), "generic", "line 2")
    assert isinstance(item, CanonicalEvent), item
    assert item.assignment is None


# --- forget ---------------------------------------------------------------------------------------


async def test_forgetting_a_person_removes_them_as_the_assigner_of_others_courses_too() -> None:
    """README, `forget`: "For a data-subject request ... Everything about them goes", and the guide:
    identities are personal data. Since issue 18 a person is also named as the *assigner* of other
    learners' courses: resolved to their object id in the activity row and the event log entries
    (AssignmentEntry.assigner_user_id), and by their address, in clear, in the queue message a parked
    or dead-lettered assignment event keeps. `plan_forget` only looks for the person as a *learner*
    (row owner, dead letter `learner`), so after `forget --learner email grace@...` the bridge still
    holds Grace's object id against every course she assigned and her e-mail address in dead letters.
    (Ada's course activity itself is Ada's: the assignment may stay, without naming Grace.)"""
    from shared.delivery import PermanentFailure
    from shared.delivery.deadletters import DeadLetters
    from shared.events.model import Learner
    from shared.events.queue import QueuedEvent
    from shared.operations.forget import forget, plan_forget
    from shared.state.models import DeliveryRecord
    from tests.fakes import FakeQueue

    grace_id = "7e2d9b4c-3a1f-4c8e-b6d2-0f9e8d7c6b5a"
    graph = _graph()
    graph.users_by_mail["grace@contoso.example"] = grace_id
    state = MemoryStateStore()
    upserter = CourseActivityUpserter(graph, state)
    by_grace = {"type": "required", "assigner": {"email": "grace@contoso.example"}}
    await upserter.apply(
        canonical(eventId="a1", status="notStarted", completionPercentage=None, assignment=by_grace)
    )
    parked = canonical(
        eventId="a2",
        status="notStarted",
        completionPercentage=None,
        course={"externalId": "course-not-in-viva-yet"},
        assignment=by_grace,
    )
    message = QueuedEvent(event=parked, received_at=datetime.now(UTC)).model_dump_json(by_alias=True)
    letters = DeadLetters(state, FakeQueue(), timedelta(hours=72))
    await letters.record("generic", "a2", message, PermanentFailure("contentNotFound", "x"))
    await state.save_delivery(DeliveryRecord("generic", "a2", "", "failed"))

    plan = await plan_forget(state, Learner(email="grace@contoso.example"), grace_id)
    await forget(state, graph, plan)

    rows = [a.activity_id for a in state.activities.values() if a.assigner_user_id == grace_id]
    entries = [
        key
        for log in state.event_log.values()
        for key, entry in log.items()
        if entry.assignment is not None and entry.assignment.assigner_user_id == grace_id
    ]
    letters_naming_her = [
        k for k, letter in state.letters.items() if "grace@contoso.example" in letter.message
    ]
    assert (rows, entries, letters_naming_her) == ([], [], []), (
        "still held after forgetting Grace: activity rows, log entries and dead letters naming her"
    )


# --- trace ----------------------------------------------------------------------------------------


def test_trace_tells_an_assignment_and_its_withdrawal_from_a_bare_not_started() -> None:
    """README, `trace`: for each course activity "its events ..., what they call for (the fold), what
    was last written to Graph, what Graph has now". trace._said prints status, percentage and dates
    only: an assignment statement, a withdrawal and a plain enrolment all read "notStarted", and an
    assigned record reads the same whether Graph holds a learningAssignment or not. Asked "why is this
    course not in Viva Learning?", the operator cannot see that the assignment was withdrawn (the
    README's "withdrawn with no progress: the record is deleted"), nor its type or due date."""
    from shared.cli.trace import _said
    from shared.events.model import CourseStatus
    from shared.state.models import AssignmentEntry, EventEntry

    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    enrolled = EventEntry("generic", "e1", at, CourseStatus.NOT_STARTED)
    assigned = EventEntry(
        "generic",
        "e2",
        at,
        CourseStatus.NOT_STARTED,
        assignment=AssignmentEntry(assignment_type=AssignmentType.REQUIRED, due_at=at + timedelta(days=30)),
    )
    withdrawn = EventEntry(
        "generic", "e3", at, CourseStatus.NOT_STARTED, assignment=AssignmentEntry(withdrawn=True)
    )
    told = {_said(enrolled), _said(assigned), _said(withdrawn)}
    assert len(told) == 3, f"trace tells all three alike: {told}"


def test_a_due_date_s_time_zone_is_an_iana_zone_not_a_file_of_this_machine() -> None:
    """README canonical table: `timeZone` is "an IANA name such as Europe/Paris". The model accepts
    whatever `zoneinfo.available_timezones()` finds under this machine's /usr/share/zoneinfo, which
    includes `localtime`, not a tz database name but a link to the host's own zone: the due instant
    then depends on the machine the worker runs on (and the set differs between a host with system zone
    data and one using the tzdata wheel, which has no `localtime`). It should be refused like any other
    name that is not in the tz database."""
    with pytest.raises(ValidationError):
        CanonicalEvent.model_validate(_assigned_doc(dueDate="2026-12-31", timeZone="localtime"))


# --- a shared record found in Graph ---------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("assigned_before", "statement"),
    [
        (None, False),  # progress on an adopted assignment without assignedDateTime
        (None, True),  # the due date moved on it
        (datetime(2026, 10, 1, 8, tzinfo=UTC), True),  # the due date moved on one assigned on 1 October
    ],
)
async def test_an_assignment_adopted_from_graph_never_gets_an_assigned_date_of_1970(
    assigned_before: datetime | None, statement: bool
) -> None:
    """README, `externalCourseActivityId` with sharedActivityIds: a record found in Graph is adopted,
    "what it says then is a floor the bridge never moves below"; "Assigned courses": assignedAt
    defaults to "the first statement's occurredAt since the last withdrawal". merge.graph_baseline
    turns an adopted learningAssignment into a statement dated 1970-01-01 (so that any statement of the
    bridge's is newer), and current_assignment then takes that *date* as the first statement's time:
    another system's assignment (Viva's LMS connector, say) whose assignedDateTime is not set, or any
    adopted assignment once the source re-states it without assignedAt (a moved due date), gets
    assignedDateTime 1970-01-01T00:00:00Z PATCHed into Graph: "Assigned to you" 56 years ago."""
    graph = _graph()
    await graph.create_activity(
        "lms-7",
        USER_ID,
        "content-101",
        ActivityWrite(
            CourseStatus.NOT_STARTED,
            assignment_type=AssignmentType.REQUIRED,
            assigned_at=assigned_before,
            due_at=datetime(2026, 12, 31, 17, tzinfo=UTC),
        ),
    )
    shared = CourseActivityUpserter(graph, MemoryStateStore(), shared_id_sources={"generic"})
    fields: dict[str, Any] = {"eventId": "p1", "externalCourseActivityId": "lms-7"}
    if statement:  # the source moves the due date, stating the assignment as it now stands
        fields |= {
            "status": "notStarted",
            "completionPercentage": None,
            "assignment": {"type": "required", "dueAt": "2027-01-31T17:00:00Z"},
        }
    await shared.apply(canonical(**fields))
    [record] = graph.activities.values()
    assert record.is_assignment
    assert record.assigned_at != EPOCH, "assignedDateTime 1970-01-01 written to the adopted assignment"
