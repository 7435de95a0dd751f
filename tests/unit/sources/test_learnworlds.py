import pytest

from shared.events.model import CourseStatus
from shared.sources import AuthenticationFailed, InvalidPayload
from tests.builders import delivery, fixture, make_source

TOKEN = "lw-shared-signature"


def test_course_completed_with_an_epoch_float_and_a_derived_id() -> None:
    source = make_source("learnworlds", TOKEN)
    body = fixture("learnworlds/course-completed.json")
    [event] = source.parse(delivery(body)).events
    assert event.status is CourseStatus.COMPLETED
    assert event.occurred_at.isoformat() == "2025-11-20T14:03:00.250000+00:00"
    assert event.event_id == source.parse(delivery(body)).events[0].event_id


def test_other_types_are_ignored_and_non_learnworlds_is_400() -> None:
    source = make_source("learnworlds", TOKEN)
    assert (
        source.parse(delivery(b'{"type": "userRegistered", "data": {}}')).ignored[0].reason
        == "typeNotProgress"
    )
    with pytest.raises(InvalidPayload):
        source.parse(delivery(b'{"data": {}}'))


def test_the_signature_header_carries_the_shared_token() -> None:
    source, body = make_source("learnworlds", TOKEN), fixture("learnworlds/course-completed.json")
    source.authenticate(delivery(body, {"Learnworlds-Webhook-Signature": TOKEN}))
    for headers in ({}, {"Learnworlds-Webhook-Signature": "x"}):
        with pytest.raises(AuthenticationFailed):
            source.authenticate(delivery(body, headers))
