import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from shared.events.model import AssignmentType, CourseStatus
from shared.sources import AuthenticationFailed, InvalidPayload, SourceConfigurationError
from tests.builders import delivery, fixture, make_source

TOKEN = "docebo-token"


def test_a_batch_gives_each_event_its_own_id_and_learners_are_accounts() -> None:
    source = make_source("docebo", TOKEN, accountAttribute="employeeId")
    result = source.parse(delivery(fixture("docebo/enrollment-completed-batch.json")))
    assert [e.event_id for e in result.events] == ["wh-7f3c9a:0", "wh-7f3c9a:1"]
    first = result.events[0]
    assert first.status is CourseStatus.COMPLETED
    assert first.learner.account is not None
    assert (first.learner.account.home_page, first.learner.account.name) == (
        "https://academy.contoso.example",
        "12301",
    )


def test_zone_less_timestamps_are_read_in_the_configured_zone() -> None:
    paris = make_source("docebo", TOKEN, timeZone="Europe/Paris")
    [first, _] = paris.parse(delivery(fixture("docebo/enrollment-completed-batch.json"))).events
    assert first.occurred_at.isoformat() == "2026-11-20T14:03:00+00:00"
    utc = make_source("docebo", TOKEN)
    assert (
        utc.parse(delivery(fixture("docebo/enrollment-completed-batch.json"))).events[0].occurred_at.hour
        == 15
    )


def test_an_enrollment_status_change_to_in_progress_is_progress() -> None:
    [event] = make_source("docebo", TOKEN).parse(delivery(fixture("docebo/enrollment-updated.json"))).events
    assert (event.status, event.course.external_id) == (CourseStatus.IN_PROGRESS, "202")


def test_an_unknown_zone_fails_at_start_up() -> None:
    with pytest.raises(SourceConfigurationError, match="time zone"):
        make_source("docebo", TOKEN, timeZone="Mars/Olympus")


@pytest.mark.parametrize(
    "body",
    [b'{"message_id": "m", "event": "course.enrollment.completed"}', b'{"event": "x", "payload": {}}', b"{"],
)
def test_what_is_not_docebo_is_400(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        make_source("docebo", TOKEN).parse(delivery(body))


def test_more_than_25_payloads_is_400() -> None:
    body = (
        b'{"message_id": "m", "event": "course.enrollment.completed", "payloads": ['
        + b",".join([b"{}"] * 26)
        + b"]}"
    )
    with pytest.raises(InvalidPayload):
        make_source("docebo", TOKEN).parse(delivery(body))


def test_the_path_token_authenticates() -> None:
    source, body = make_source("docebo", TOKEN), fixture("docebo/enrollment-updated.json")
    source.authenticate(delivery(body, path_token=TOKEN))
    with pytest.raises(AuthenticationFailed):
        source.authenticate(delivery(body))


ASSIGNING: dict[str, Any] = {"assignments": True, "accountAttribute": "extension_docebo_userId"}


def created(**payload: object) -> bytes:
    base = json.loads(fixture("docebo/enrollment-created-with-deadline.json"))
    base["payload"].update(payload)
    return json.dumps(base).encode()


def test_an_enrollment_with_a_validity_end_is_an_assignment_due_then() -> None:
    source = make_source("docebo", TOKEN, timeZone="Europe/Paris", **ASSIGNING)
    [event] = source.read(delivery(fixture("docebo/enrollment-created-with-deadline.json"))).events
    assert event.status is CourseStatus.NOT_STARTED
    assert event.assignment is not None
    assert event.assignment.type is AssignmentType.REQUIRED
    assert event.assignment.due_utc() == datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # 18:00 in Paris
    assert event.assignment.assigned_at == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert event.assignment.assigner is not None
    assert event.assignment.assigner.account is not None
    assert event.assignment.assigner.account.name == "12355"


def test_a_validity_end_without_a_time_is_the_end_of_that_day_in_the_zone() -> None:
    source = make_source("docebo", TOKEN, timeZone="Europe/Paris", **ASSIGNING)
    [event] = source.parse(delivery(created(enrollment_date_end_validity="2026-12-31"))).events
    assert event.assignment is not None
    assert (event.assignment.due_date, event.assignment.time_zone) == (date(2026, 12, 31), "Europe/Paris")


def test_an_enrollment_without_a_validity_end_is_an_assignment_without_a_due_date() -> None:
    source = make_source("docebo", TOKEN, assignmentType="recommended", **ASSIGNING)
    [event] = source.parse(delivery(created(enrollment_date_end_validity=None))).events
    assert event.assignment is not None
    assert event.assignment.type is AssignmentType.RECOMMENDED
    assert event.assignment.due_utc() is None


def test_enrollments_are_not_assignments_unless_the_source_says_so() -> None:
    result = make_source("docebo", TOKEN).read(
        delivery(fixture("docebo/enrollment-created-with-deadline.json"))
    )
    assert result.events == []
    assert [i.reason for i in result.ignored] == ["notStarted"]


@pytest.mark.parametrize(
    "payload",
    [{"subscribed_by_id": 12301}, {"level": "instructor"}],
    ids=["self-enrolled", "not-a-student"],
)
def test_an_enrollment_the_learner_made_or_not_as_a_student_is_no_assignment(
    payload: dict[str, object],
) -> None:
    result = make_source("docebo", TOKEN, **ASSIGNING).read(delivery(created(**payload)))
    assert result.events == []


def test_the_assigner_is_left_out_unless_learners_are_accounts() -> None:
    source = make_source("docebo", TOKEN, learner="upn", **ASSIGNING)
    [event] = source.parse(delivery(created())).events
    assert event.assignment is not None
    assert event.assignment.assigner is None


def test_an_update_without_the_validity_end_is_progress_only() -> None:
    source = make_source("docebo", TOKEN, **ASSIGNING)
    [event] = source.parse(delivery(fixture("docebo/enrollment-updated.json"))).events
    assert (event.status, event.assignment) == (CourseStatus.IN_PROGRESS, None)


def test_an_update_with_a_moved_validity_end_restates_the_assignment() -> None:
    body = json.loads(fixture("docebo/enrollment-updated.json"))
    body["payload"]["enrollment_date_end_validity"] = "2027-01-15 17:00:00"
    [event] = make_source("docebo", TOKEN, **ASSIGNING).parse(delivery(json.dumps(body).encode())).events
    assert event.assignment is not None
    assert event.assignment.due_utc() == datetime(2027, 1, 15, 17, 0, tzinfo=UTC)


def test_a_deleted_enrollment_withdraws_the_assignment() -> None:
    source = make_source("docebo", TOKEN, **ASSIGNING)
    [event] = source.read(delivery(fixture("docebo/enrollment-deleted.json"))).events
    assert event.assignment is not None
    assert event.assignment.withdrawn
    ignored = make_source("docebo", TOKEN).read(delivery(fixture("docebo/enrollment-deleted.json")))
    assert (ignored.events, [i.reason for i in ignored.ignored]) == ([], ["eventNotProgress"])


def test_a_validity_end_that_is_no_date_is_ignored_as_unmappable() -> None:
    result = make_source("docebo", TOKEN, **ASSIGNING).parse(
        delivery(created(enrollment_date_end_validity="soon"))
    )
    assert [i.reason for i in result.ignored] == ["unmappable"]


def test_a_validity_end_with_no_instant_in_utc_is_ignored_as_unmappable() -> None:
    source = make_source("docebo", TOKEN, timeZone="America/New_York", **ASSIGNING)
    result = source.parse(delivery(created(enrollment_date_end_validity="9999-12-31")))
    assert (result.events, [i.reason for i in result.ignored]) == ([], ["unmappable"])


@pytest.mark.parametrize("level", ["student", "learner", "Learner"])
def test_an_enrollment_at_the_learner_level_is_an_assignment_whichever_name_docebo_gives_it(
    level: str,
) -> None:
    """Docebo's enrolment screen names the levels "Learners, Tutors, or Instructors" (help.docebo.com
    article 360020124659, "Enrolling users in courses"), its API `student`, `tutor`, `instructor`; a
    public integration's recorded course.enrollment.created payload says `"level": "learner"`
    (graz-dev/docebo-webhook-listener, bruno-collection/events/enrollment). Both are the learner."""
    [event] = make_source("docebo", TOKEN, **ASSIGNING).parse(delivery(created(level=level))).events
    assert event.assignment is not None
    assert event.assignment.type is AssignmentType.REQUIRED


@pytest.mark.parametrize("level", ["tutor", "instructor", "Instructor"])
def test_a_tutor_or_instructor_enrollment_is_no_assignment(level: str) -> None:
    result = make_source("docebo", TOKEN, **ASSIGNING).read(delivery(created(level=level)))
    assert result.events == []
