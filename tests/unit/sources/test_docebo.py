import pytest

from shared.events.model import CourseStatus
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
