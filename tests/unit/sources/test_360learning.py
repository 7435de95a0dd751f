from typing import Any

import pytest

from shared.events.model import AssignmentType, CourseStatus
from shared.sources import AuthenticationFailed, InvalidPayload, SourceFormat
from tests.builders import TEST_SECRET, delivery, fixture, make_source, signed_headers


def source() -> SourceFormat:
    return make_source("360learning", TEST_SECRET, accountAttribute="extension_lms_userId")


def test_a_finished_attempt_completes_the_course_with_the_webhook_id_as_event_id() -> None:
    body = fixture("360learning/course-attempt-closed.json")
    [event] = source().parse(delivery(body, {"webhook-id": "msg_2Xyz"})).events
    assert (event.status, event.event_id, event.course.external_id) == (
        CourseStatus.COMPLETED,
        "msg_2Xyz",
        "course-101",
    )
    assert event.learner.account is not None
    assert event.learner.account.name == "65f0c0ffee0000000000e181"


def test_an_attempt_closed_for_another_reason_is_only_progress() -> None:
    body = fixture("360learning/course-attempt-closed.json").replace(b"learnerFinished", b"sessionExpired")
    assert source().parse(delivery(body)).events[0].status is CourseStatus.IN_PROGRESS


def test_a_path_status_maps_to_progress() -> None:
    [event] = source().parse(delivery(fixture("360learning/path-status-updated.json"))).events
    assert (event.status, event.course.external_id) == (CourseStatus.IN_PROGRESS, "course-202")


def test_bare_xapi_statements_are_read_by_the_xapi_rules() -> None:
    result = source().parse(delivery(fixture("xapi/attempted-with-completion.json")))
    assert result.events[0].status is CourseStatus.COMPLETED


def test_standard_webhooks_signatures_authenticate() -> None:
    body = fixture("360learning/course-attempt-closed.json")
    source().authenticate(delivery(body, signed_headers(body)))
    with pytest.raises(AuthenticationFailed):
        source().authenticate(delivery(body, {**signed_headers(body), "webhook-signature": "v1,AAAA"}))


def test_what_is_neither_360learning_nor_xapi_is_400() -> None:
    with pytest.raises(InvalidPayload):
        source().parse(delivery(b'{"type": "course.attempt.closed"}'))


def assigning(**options: Any) -> SourceFormat:
    return make_source(
        "360learning", TEST_SECRET, accountAttribute="extension_lms_userId", assignments=True, **options
    )


def test_an_assigning_source_states_the_paths_assignment_with_each_status() -> None:
    [event] = assigning().read(delivery(fixture("360learning/path-status-updated.json"))).events
    assert event.status is CourseStatus.IN_PROGRESS
    assert event.assignment is not None
    assert event.assignment.type is AssignmentType.REQUIRED
    assert event.assignment.due_utc() is None  # 360Learning's webhooks carry no due date


@pytest.mark.parametrize("status", ["notYetStarted", "sessionNotOpened"])
def test_an_enrolment_not_started_yet_is_an_assignment_not_started(status: str) -> None:
    body = fixture("360learning/path-status-updated.json").replace(b'"onTime"', f'"{status}"'.encode())
    result = assigning(assignmentType="recommended").read(delivery(body))
    [event] = result.events
    assert event.status is CourseStatus.NOT_STARTED
    assert event.assignment is not None
    assert event.assignment.type is AssignmentType.RECOMMENDED


def test_not_enrolled_withdraws_the_assignment() -> None:
    [event] = assigning().read(delivery(fixture("360learning/path-status-not-enrolled.json"))).events
    assert event.assignment is not None
    assert event.assignment.withdrawn
    result = source().read(delivery(fixture("360learning/path-status-not-enrolled.json")))
    assert (result.events, [i.reason for i in result.ignored]) == ([], ["statusNotProgress"])


def test_statuses_carry_no_assignment_unless_the_source_assigns() -> None:
    [event] = source().read(delivery(fixture("360learning/path-status-updated.json"))).events
    assert event.assignment is None


def test_an_enrolled_webhook_names_no_learner_and_is_ignored() -> None:
    result = assigning().read(delivery(fixture("360learning/path-session-users-enrolled.json")))
    assert (result.events, [i.reason for i in result.ignored]) == ([], ["learnerMissing"])
