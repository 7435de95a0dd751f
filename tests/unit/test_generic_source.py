from datetime import UTC, datetime, timedelta

import pytest

from shared.config.settings import SourceSettings
from shared.sources import AuthenticationFailed, Delivery, InvalidPayload, SourceConfigurationError
from shared.sources.base import MAX_EVENTS_PER_DELIVERY
from shared.sources.formats.generic import GenericFormat
from shared.sources.registry import build_source
from tests.builders import TEST_SECRET, dumps, event, signed_headers


def source(secret: str = TEST_SECRET) -> GenericFormat:
    from pydantic import SecretStr

    return GenericFormat(SourceSettings(name="generic", format="generic", secret=SecretStr(secret)))


def delivery(body: bytes, headers: dict[str, str] | None = None) -> Delivery:
    return Delivery(
        "generic", body, headers if headers is not None else signed_headers(body), datetime.now(UTC)
    )


def test_a_correctly_signed_delivery_is_authentic() -> None:
    source().authenticate(delivery(dumps(event())))


def test_a_signature_made_with_another_secret_fails() -> None:
    body = dumps(event())
    other = "whsec_" + "b3RoZXItc2VjcmV0LWZvci10ZXN0cw=="
    with pytest.raises(AuthenticationFailed, match="no matching signature"):
        source().authenticate(delivery(body, signed_headers(body, secret=other)))


def test_a_body_changed_after_signing_fails() -> None:
    headers = signed_headers(dumps(event()))
    with pytest.raises(AuthenticationFailed):
        source().authenticate(delivery(dumps(event(completionPercentage=100)), headers))


def test_a_stale_timestamp_fails() -> None:
    body = dumps(event())
    old = datetime.now(UTC) - timedelta(minutes=6)
    with pytest.raises(AuthenticationFailed, match="too old"):
        source().authenticate(delivery(body, signed_headers(body, when=old)))


def test_missing_signature_headers_fail() -> None:
    with pytest.raises(AuthenticationFailed, match="missing"):
        source().authenticate(delivery(dumps(event()), {"content-type": "application/json"}))


@pytest.mark.parametrize("signature", ["v1", "v1,not*base64", "garbage with spaces"])
def test_a_malformed_signature_header_is_an_authentication_failure_not_a_crash(signature: str) -> None:
    body = dumps(event())
    headers = {**signed_headers(body), "webhook-signature": signature}
    with pytest.raises(AuthenticationFailed):
        source().authenticate(delivery(body, headers))


def test_a_non_utf8_body_is_an_authentication_failure() -> None:
    body = b"\xff\xfe{}"
    headers = signed_headers(b"{}")
    with pytest.raises(AuthenticationFailed):
        source().authenticate(delivery(body, headers))


def test_an_invalid_secret_fails_at_start_up_without_echoing_it() -> None:
    with pytest.raises(SourceConfigurationError) as caught:
        source("whsec_%%%not-base64%%%")
    assert "%%%" not in str(caught.value)


def test_a_missing_secret_fails_at_start_up() -> None:
    with pytest.raises(SourceConfigurationError, match="BRIDGE_SOURCE_GENERIC_SECRET"):
        build_source(SourceSettings(name="generic", format="generic"))


def test_unknown_options_fail_at_start_up() -> None:
    from pydantic import SecretStr

    settings = SourceSettings(
        name="g", format="generic", options={"colour": "red"}, secret=SecretStr(TEST_SECRET)
    )
    with pytest.raises(SourceConfigurationError, match="colour"):
        build_source(settings)


def test_one_event_or_an_array_of_events_parse() -> None:
    assert len(source().parse(delivery(dumps(event()))).events) == 1
    batch = [event(eventId="a"), event(eventId="b")]
    assert [e.event_id for e in source().parse(delivery(dumps(batch))).events] == ["a", "b"]


def test_the_source_defaults_to_the_url_source_and_must_match_it() -> None:
    assert source().parse(delivery(dumps(event()))).events[0].source == "generic"
    with pytest.raises(InvalidPayload) as caught:
        source().parse(delivery(dumps([event(source="other")])))
    assert caught.value.problems[0].pointer == "/0/source"


def test_invalid_fields_are_reported_as_json_pointers() -> None:
    body = dumps([event(), event(status="done", learner={"email": "nope"})])
    with pytest.raises(InvalidPayload) as caught:
        source().parse(delivery(body))
    pointers = {p.pointer for p in caught.value.problems}
    assert {"/1/status", "/1/learner/email"} <= pointers


def test_pointers_into_a_single_object_have_no_index() -> None:
    with pytest.raises(InvalidPayload) as caught:
        source().parse(delivery(dumps(event(status="done"))))
    assert caught.value.problems[0].pointer == "/status"


def test_not_json_says_where_it_breaks() -> None:
    with pytest.raises(InvalidPayload, match="line 1, column 2"):
        source().parse(delivery(b"{oops"))


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42"])
def test_bodies_that_hold_no_event_are_invalid(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        source().parse(delivery(body))


def test_a_delivery_has_a_bounded_number_of_events() -> None:
    body = dumps([event(eventId=f"e{i}") for i in range(MAX_EVENTS_PER_DELIVERY + 1)])
    with pytest.raises(InvalidPayload, match="at most"):
        source().parse(delivery(body))


def test_an_assignment_with_a_due_date_in_a_time_zone_parses() -> None:
    assignment = {
        "type": "required",
        "assignedAt": "2026-11-02T09:00:00+01:00",
        "dueDate": "2026-12-31",
        "timeZone": "Europe/Paris",
        "assigner": {"upn": "grace.hopper@contoso.example"},
        "notes": "Before the audit, please.",
    }
    parsed = source().parse(
        delivery(dumps(event(status="notStarted", assignment=assignment, completionPercentage=None)))
    )
    given = parsed.events[0].assignment
    assert given is not None
    assert given.type == "required"
    assert given.due_utc() == datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)  # end of the day in Paris
    assert given.assigned_at == datetime(2026, 11, 2, 8, tzinfo=UTC)


def test_a_withdrawal_parses_and_takes_no_other_assignment_field() -> None:
    parsed = source().parse(delivery(dumps(event(assignment={"withdrawn": True}))))
    assert parsed.events[0].assignment is not None
    assert parsed.events[0].assignment.withdrawn
    with pytest.raises(InvalidPayload) as caught:
        source().parse(delivery(dumps(event(assignment={"withdrawn": True, "notes": "x"}))))
    assert [p.pointer for p in caught.value.problems] == ["/assignment"]


@pytest.mark.parametrize(
    ("assignment", "pointer"),
    [
        ({}, "/assignment"),
        ({"type": "mandatory"}, "/assignment/type"),
        ({"type": "required", "dueAt": "2026-12-31T17:00:00"}, "/assignment/dueAt"),
        ({"type": "required", "dueDate": "2026-12-31", "timeZone": "CET+1"}, "/assignment/timeZone"),
        ({"type": "required", "dueDate": "2026-12-31"}, "/assignment"),
        ({"type": "required", "notes": "x" * 2001}, "/assignment/notes"),
        ({"type": "required", "assigner": {}}, "/assignment/assigner"),
    ],
)
def test_an_invalid_assignment_is_reported_where_it_is_wrong(
    assignment: dict[str, object], pointer: str
) -> None:
    with pytest.raises(InvalidPayload) as caught:
        source().parse(delivery(dumps(event(assignment=assignment))))
    assert [p.pointer for p in caught.value.problems] == [pointer]


def test_a_not_started_event_is_ignored_unless_it_carries_an_assignment() -> None:
    body = dumps(
        [
            event(eventId="enrolled", status="notStarted", completionPercentage=None),
            event(
                eventId="assigned",
                status="notStarted",
                completionPercentage=None,
                assignment={"type": "required"},
            ),
            event(
                eventId="withdrawn",
                status="notStarted",
                completionPercentage=None,
                assignment={"withdrawn": True},
            ),
        ]
    )
    result = source().read(delivery(body))
    assert [e.event_id for e in result.events] == ["assigned", "withdrawn"]
    assert [i.reference for i in result.ignored] == ["enrolled"]
