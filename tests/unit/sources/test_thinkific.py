import hashlib
import hmac
import json
from typing import Any

import pytest

from shared.events.model import CourseStatus
from shared.sources import AuthenticationFailed, InvalidPayload, ParseResult
from tests.builders import delivery, fixture, make_source

API_KEY = "thinkific-api-key"


def sign(body: bytes, key: str = API_KEY) -> dict[str, str]:
    return {"X-Thinkific-Hmac-Sha256": hmac.new(key.encode(), body, hashlib.sha256).hexdigest()}


def parse(name: str, **options: Any) -> ParseResult:
    return make_source("thinkific", API_KEY, **options).parse(delivery(fixture(f"thinkific/{name}")))


def test_progress_takes_the_string_percentage_and_never_completes_from_completed_at() -> None:
    [event] = parse("enrollment-progress.json").events
    assert (event.status, event.completion_percentage) == (CourseStatus.IN_PROGRESS, 38)
    assert event.completed_at is None
    assert (event.course.external_id, event.course.title) == ("101", "Analytical Engines")
    assert event.event_id == "20261120140300000000001"
    assert event.learner.email == "ada.lovelace@contoso.example"


def test_enrollment_completed_completes_at_the_platforms_time() -> None:
    [event] = parse("enrollment-completed.json").events
    assert event.status is CourseStatus.COMPLETED
    assert event.completed_at is not None
    assert event.completed_at.isoformat() == "2026-11-21T09:59:30+00:00"


def test_other_topics_are_ignored() -> None:
    assert parse("order-created.json").ignored[0].reason == "topicNotProgress"


def test_the_platform_user_id_can_name_the_learner() -> None:
    [event] = parse("enrollment-progress.json", learner="account", accountAttribute="employeeId").events
    assert event.learner.account is not None
    assert event.learner.account.name == "9001"


def test_an_unparseable_percentage_is_ignored_not_rejected() -> None:
    document = json.loads(fixture("thinkific/enrollment-progress.json"))
    document["payload"]["percentage_completed"] = "lots"
    result = make_source("thinkific", API_KEY).parse(delivery(json.dumps(document).encode()))
    assert result.ignored[0].reason == "unmappable"


@pytest.mark.parametrize("body", [b'{"id": 1}', fixture("thinkific/enrollment-progress.json")[:90], b"[]"])
def test_what_is_not_a_thinkific_webhook_is_400(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        make_source("thinkific", API_KEY).parse(delivery(body))


def test_the_hmac_of_the_raw_body_authenticates() -> None:
    source, body = make_source("thinkific", API_KEY), fixture("thinkific/enrollment-progress.json")
    source.authenticate(delivery(body, sign(body)))
    source.authenticate(delivery(body, {k: v.upper() for k, v in sign(body).items()}))  # hex case
    for headers in ({}, sign(body, "other-key"), sign(body + b" ")):
        with pytest.raises(AuthenticationFailed):
            source.authenticate(delivery(body, headers))
