import pytest

from shared.events.model import CourseStatus
from shared.sources import AuthenticationFailed, InvalidPayload
from tests.builders import delivery, fixture, make_source

TOKEN = "teachable-path-token"


def test_lecture_progress_arrives_as_an_array_and_carries_the_course_percentage() -> None:
    source = make_source("teachable", TOKEN)
    result = source.parse(delivery(fixture("teachable/lecture-progress.json")))
    [event] = result.events
    assert (event.status, event.completion_percentage) == (CourseStatus.IN_PROGRESS, 40)
    assert (event.event_id, event.course.external_id) == ("990001", "202")


def test_a_bare_enrollment_completed_object_is_accepted_too() -> None:
    source = make_source("teachable", TOKEN)
    [event] = source.parse(delivery(fixture("teachable/enrollment-completed.json"))).events
    assert event.status is CourseStatus.COMPLETED
    assert event.completed_at is not None


def test_everything_valid_is_answered_200_even_when_ignored() -> None:
    source = make_source("teachable", TOKEN)
    body = b'[{"type": "Sale.created", "id": 1, "created": "2026-11-20T00:00:00Z", "object": {}}]'
    result = source.parse(delivery(body))
    assert result.ignored[0].reason == "typeNotProgress"
    assert source.accepted(result).status == 200


def test_the_token_is_read_from_the_path_by_default_or_a_header() -> None:
    body = fixture("teachable/enrollment-completed.json")
    by_path = make_source("teachable", TOKEN)
    by_path.authenticate(delivery(body, path_token=TOKEN))
    with pytest.raises(AuthenticationFailed):
        by_path.authenticate(delivery(body, {"x-webhook-token": TOKEN}))
    by_header = make_source("teachable", TOKEN, token={"location": "header", "header": "X-Teachable-Token"})
    by_header.authenticate(delivery(body, {"X-Teachable-Token": TOKEN}))
    with pytest.raises(AuthenticationFailed):
        by_header.authenticate(delivery(body, {"X-Teachable-Token": "nope"}))


@pytest.mark.parametrize("body", [b"[]", b'[{"type": "Enrollment.completed"}]', b'[{"type"'])
def test_what_is_not_teachable_is_400(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        make_source("teachable", TOKEN).parse(delivery(body))
