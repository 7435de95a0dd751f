import base64
import json
from typing import Any

import pytest

from shared.events.model import CourseStatus
from shared.sources import AuthenticationFailed, InvalidPayload, ParseResult, SourceConfigurationError
from shared.sources.formats.xapi import XapiFormat
from tests.builders import TEST_SECRET, delivery, fixture, make_source, signed_headers

BASIC = "lrs-key:lrs-secret"


def basic(credentials: str = BASIC) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def xapi(**options: Any) -> XapiFormat:
    source = make_source("xapi", BASIC, name="lrs", **options)
    assert isinstance(source, XapiFormat)
    return source


def parse(body: bytes | str, **options: Any) -> ParseResult:
    raw = body if isinstance(body, bytes) else fixture(f"xapi/{body}")
    return xapi(**options).parse(delivery(raw, source="lrs"))


def test_a_satisfied_cmi5_course_is_a_completion() -> None:
    [event] = parse("cmi5-course-satisfied.json").events
    assert (event.status, event.completion_percentage) == (CourseStatus.COMPLETED, 100)
    assert event.course.external_id == "https://lms.contoso.example/courses/course-101"
    assert event.course.title == "Analytical Engines"
    assert event.learner.account is not None
    assert event.learner.account.name == "E1815"
    assert event.event_id == "0b1e6a55-3c44-4f0a-9a3e-7d2c5b8e9f10"
    assert event.occurred_at.isoformat() == "2026-11-20T14:03:00+00:00"  # no seconds in the source


def test_cmi5_progress_gives_a_percentage_even_as_a_float() -> None:
    [event] = parse("cmi5-au-progressed.json").events
    assert (event.status, event.completion_percentage) == (CourseStatus.IN_PROGRESS, 62)
    assert event.occurred_at.isoformat() == "2026-11-18T08:30:12.500000+00:00"


def test_result_completion_on_the_course_completes_it_whatever_the_verb() -> None:
    [event] = parse("attempted-with-completion.json").events
    assert event.status is CourseStatus.COMPLETED
    assert event.learner.email == "ada.lovelace@contoso.example"


def test_a_statement_without_an_id_gets_a_deterministic_one() -> None:
    first, again = parse("attempted-with-completion.json"), parse("attempted-with-completion.json")
    assert first.events[0].event_id == again.events[0].event_id
    assert first.item_ids == [first.events[0].event_id]


def test_a_completed_lesson_marks_its_parent_course_in_progress_only() -> None:
    [event] = parse("lesson-with-course-parent.json").events
    assert event.course.external_id == "https://lms.contoso.example/courses/course-101"
    assert (event.status, event.completion_percentage) == (CourseStatus.IN_PROGRESS, None)


def test_a_typed_sub_activity_without_a_course_parent_is_ignored() -> None:
    result = parse("lesson-without-parent.json")
    assert result.events == []
    assert result.ignored[0].reason == "notCourseLevel"


def test_a_voiding_statement_withdraws_the_statement_it_names() -> None:
    result = parse("voided.json")
    assert result.events == []
    assert result.ignored == []
    [void] = result.voids
    assert (void.voided_event_id, void.voiding_event_id) == (
        "0b1e6a55-3c44-4f0a-9a3e-7d2c5b8e9f10",
        "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    )


def test_a_forwarding_envelope_maps_each_statement_and_failed_never_completes() -> None:
    result = parse("lrs-forwarding-envelope.json")
    assert [(e.event_id[-1], e.status) for e in result.events] == [
        ("1", CourseStatus.IN_PROGRESS),
        ("3", CourseStatus.IN_PROGRESS),
    ]
    assert result.events[0].started_at is not None  # launched: the course started then
    assert [i.reason for i in result.ignored] == ["verbNotProgress"]
    assert len(result.item_ids) == 3


@pytest.mark.parametrize(
    ("actor", "reason"),
    [
        ({"objectType": "Group", "member": [{"mbox": "mailto:a@b.example"}]}, "actorNotResolvable"),
        ({"mbox_sha1sum": "ebd31e95054c018b10727ccffd2ef2ec3a016ee9"}, "actorNotResolvable"),
        ({"openid": "https://id.example/ada"}, "actorNotResolvable"),
    ],
)
def test_actors_that_cannot_be_resolved_are_ignored_never_guessed(actor: dict[str, Any], reason: str) -> None:
    statement = json.loads(fixture("xapi/attempted-with-completion.json"))
    statement["actor"] = actor
    result = parse(json.dumps(statement).encode())
    assert [i.reason for i in result.ignored] == [reason]


def test_sub_statements_are_ignored() -> None:
    statement = json.loads(fixture("xapi/attempted-with-completion.json"))
    statement["object"] = {
        "objectType": "SubStatement",
        "actor": statement["actor"],
        "verb": statement["verb"],
        "object": {"id": "https://x.example"},
    }
    assert parse(json.dumps(statement).encode()).ignored[0].reason == "notCourseLevel"


def test_the_course_id_can_be_the_last_segment_of_the_iri() -> None:
    [event] = parse("cmi5-course-satisfied.json", courseId="lastSegment").events
    assert event.course.external_id == "course-101"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (b'{"actor": {"mbox": "mailto:a@b.example"}, "object": {"id": "x"}}', "/verb"),
        (b'{"actor": {"mbox": "a@b.example"}, "verb": {"id": "v"}, "object": {"id": "x"}}', "/actor/mbox"),
        (b'{"actor": {}, "verb": {"id": "v"}, "object": {"id": "x"}, "version": "3.0.0"}', "/version"),
    ],
)
def test_what_is_not_xapi_is_refused_with_the_field(body: bytes, pointer: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse(body)
    assert pointer in [p.pointer.removeprefix("/0") for p in caught.value.problems]


@pytest.mark.parametrize("body", [b'{"statements": [', b"[]", b"42", b'{"statements": []}'])
def test_truncated_or_empty_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        parse(body)


def test_the_lrs_endpoint_answers_with_the_statement_ids_and_the_version() -> None:
    source = xapi()
    result = source.parse(
        delivery(
            fixture("xapi/lrs-forwarding-envelope.json"),
            {"X-Experience-API-Version": "1.0.3"},
            endpoint="xapi",
        )
    )
    answer = source.accepted(result, "xapi")
    assert answer.status == 200
    assert answer.body == [f"11111111-aaaa-4bbb-8ccc-00000000000{i}" for i in (1, 2, 3)]
    assert answer.headers == {"X-Experience-API-Version": "1.0.3"}


@pytest.mark.parametrize("version", [None, "0.95", "3.0.0"])
def test_the_lrs_endpoint_requires_a_supported_version_header(version: str | None) -> None:
    headers = {"X-Experience-API-Version": version} if version else {}
    with pytest.raises(InvalidPayload, match="X-Experience-API-Version"):
        xapi().parse(delivery(fixture("xapi/voided.json"), headers, endpoint="xapi"))


def test_basic_credentials_authenticate_and_wrong_ones_do_not() -> None:
    source, body = xapi(), fixture("xapi/voided.json")
    source.authenticate(delivery(body, basic()))
    for headers in (
        {},
        basic("lrs-key:wrong"),
        {"Authorization": "Basic %%%"},
        {"Authorization": "Bearer x"},
    ):
        with pytest.raises(AuthenticationFailed):
            source.authenticate(delivery(body, headers))


def test_bearer_and_standard_webhooks_authentication_are_options() -> None:
    body = fixture("xapi/voided.json")
    bearer = make_source("xapi", "token-123", auth="bearer")
    bearer.authenticate(delivery(body, {"Authorization": "Bearer token-123"}))
    with pytest.raises(AuthenticationFailed):
        bearer.authenticate(delivery(body, {"Authorization": "Bearer token-124"}))
    signed = make_source("xapi", TEST_SECRET, auth="standardWebhooks")
    signed.authenticate(delivery(body, signed_headers(body)))
    with pytest.raises(AuthenticationFailed):
        signed.authenticate(delivery(body, signed_headers(body + b" ")))


def test_unknown_options_are_refused_at_start_up() -> None:
    with pytest.raises(SourceConfigurationError, match="auth"):
        make_source("xapi", BASIC, auth="magic")


def test_registered_is_no_assignment_its_actor_is_the_learner_and_it_names_no_type_or_due_date() -> None:
    statement = json.loads(fixture("xapi/cmi5-course-satisfied.json"))
    statement["verb"] = {
        "id": "http://adlnet.gov/expapi/verbs/registered",
        "display": {"en-US": "registered"},
    }
    result = parse(json.dumps(statement).encode(), accountAttribute="employeeId")
    assert (result.events, [i.reason for i in result.ignored]) == ([], ["verbNotProgress"])
