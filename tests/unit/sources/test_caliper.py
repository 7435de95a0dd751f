import json
from typing import Any

import pytest

from shared.events.model import CourseStatus
from shared.sources import AuthenticationFailed, InvalidPayload, ParseResult
from shared.sources.exceptions import UnsupportedVersion
from tests.builders import delivery, fixture, make_source

TOKEN = "caliper-sensor-token"


def parse(body: bytes | str, **options: Any) -> ParseResult:
    raw = body if isinstance(body, bytes) else fixture(f"caliper/{body}")
    return make_source("caliper", TOKEN, **options).parse(delivery(raw))


def test_completed_on_a_course_offering_is_a_completion_and_entities_are_skipped() -> None:
    result = parse("envelope-mixed.json")
    completed = result.events[0]
    assert (completed.status, completed.completion_percentage) == (CourseStatus.COMPLETED, 100)
    assert completed.course.external_id == "https://lms.contoso.example/courses/course-101"
    assert completed.learner.account is not None
    assert (completed.learner.account.home_page, completed.learner.account.name) == (
        "https://lms.contoso.example",
        "E1815",
    )
    assert len(result.events) == 3  # the Person entity is not an event


def test_an_assessment_item_completed_is_one_question_not_the_course() -> None:
    item = parse("envelope-mixed.json").events[1]
    assert item.status is CourseStatus.IN_PROGRESS
    assert item.course.external_id == "https://lms.contoso.example/courses/course-202"


def test_a_graded_attempt_counts_for_its_assignee_in_progress() -> None:
    graded = parse("envelope-mixed.json").events[2]
    assert graded.status is CourseStatus.IN_PROGRESS
    assert graded.learner.account is not None
    assert graded.learner.account.name == "E1815"


def test_tool_use_units_completed_gives_a_percentage() -> None:
    [event] = parse("envelope-tooluse-progress.json").events
    assert (event.status, event.completion_percentage) == (CourseStatus.IN_PROGRESS, 48)


def test_an_assignable_completed_completes_and_caliper_1_1_is_read() -> None:
    [event] = parse("envelope-assignable-completed.json").events
    assert event.status is CourseStatus.COMPLETED


def test_the_course_id_can_be_the_course_number() -> None:
    [event] = parse("envelope-tooluse-progress.json", courseId="courseNumber").events
    assert event.course.external_id == "course-101"


def test_an_event_with_no_course_context_is_ignored() -> None:
    envelope = json.loads(fixture("caliper/envelope-tooluse-progress.json"))
    del envelope["data"][0]["group"]
    result = parse(json.dumps(envelope).encode())
    assert [i.reason for i in result.ignored] == ["notCourseLevel"]


def test_an_unknown_data_version_is_422() -> None:
    envelope = json.loads(fixture("caliper/envelope-mixed.json"))
    envelope["dataVersion"] = "http://purl.imsglobal.org/ctx/caliper/v1p0"
    with pytest.raises(UnsupportedVersion) as caught:
        parse(json.dumps(envelope).encode())
    assert caught.value.status == 422


@pytest.mark.parametrize(
    "body",
    [
        fixture("caliper/envelope-mixed.json")[:200],  # truncated
        b'{"id": "https://lms.contoso.example/users/1", "type": "Person"}',  # an entity, not an event
        json.dumps({**json.loads(fixture("caliper/envelope-mixed.json")), "data": []}).encode(),
        b"[]",
    ],
)
def test_what_is_not_an_envelope_is_400(body: bytes) -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse(body)
    assert caught.value.status == 400


def test_the_answer_is_200_with_an_empty_body() -> None:
    source = make_source("caliper", TOKEN)
    answer = source.accepted(source.parse(delivery(fixture("caliper/envelope-mixed.json"))))
    assert (answer.status, answer.body) == (200, None)


def test_the_sensor_authenticates_with_its_bearer_token() -> None:
    source, body = make_source("caliper", TOKEN), fixture("caliper/envelope-mixed.json")
    source.authenticate(delivery(body, {"Authorization": f"Bearer {TOKEN}"}))
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        with pytest.raises(AuthenticationFailed):
            source.authenticate(delivery(body, headers))


def _events(name: str) -> list[dict[str, Any]]:
    return [i for i in json.loads(fixture(f"caliper/{name}"))["data"] if i["type"].endswith("Event")]


def test_a_bare_event_reads_as_if_enveloped() -> None:
    enveloped = parse("envelope-mixed.json").events[0]
    [bare] = parse(json.dumps(_events("envelope-mixed.json")[0]).encode()).events
    assert bare == enveloped


def test_an_array_of_bare_events_reads_as_if_enveloped() -> None:
    assert (
        parse(json.dumps(_events("envelope-mixed.json")).encode()).events
        == parse("envelope-mixed.json").events
    )


def test_a_bare_event_of_another_caliper_version_is_422() -> None:
    event = {**_events("envelope-mixed.json")[0], "@context": "http://purl.imsglobal.org/ctx/caliper/v1p0"}
    with pytest.raises(UnsupportedVersion):
        parse(json.dumps(event).encode())


@pytest.mark.parametrize(
    "change",
    [
        {"type": ["NavigationEvent"]},
        {"generated": {"items": 7}},
        {"object": {"type": ["CourseOffering"], "id": "x"}},
        {"eventTime": "0001-01-01T00:00:00+01:00"},
        {"eventTime": 1e20},
        {"actor": {"type": "Person", "id": "http://["}},
    ],
)
def test_wrong_shapes_inside_an_event_are_ignored_or_refused_never_a_crash(change: dict[str, Any]) -> None:
    envelope = json.loads(fixture("caliper/envelope-tooluse-progress.json"))
    envelope["data"] = [{**item, **change} for item in envelope["data"]] + [7, "text", None]
    result = parse(json.dumps(envelope).encode())
    assert len(result.item_ids) == len(envelope["data"])
