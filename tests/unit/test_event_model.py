from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.events.model import CanonicalEvent, CourseStatus
from shared.events.schema import SCHEMA_PATH, render
from tests.builders import USER_ID, canonical

make = canonical  # a generic-source event, fields overridden


def test_wire_format_is_camel_case_and_round_trips() -> None:
    model = make()
    wire = model.to_wire()
    assert {"eventId", "occurredAt", "completionPercentage"} <= set(wire)
    assert CanonicalEvent.model_validate(wire) == model


def test_occurred_at_without_an_offset_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        make(occurredAt="2026-11-20T14:03:00")


def test_timestamps_are_stored_in_utc() -> None:
    model = make(occurredAt="2026-11-20T15:03:00+01:00")
    assert model.occurred_at == datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
    assert model.to_wire()["occurredAt"] == "2026-11-20T14:03:00Z"


@pytest.mark.parametrize(
    "learner",
    [
        {},
        {"email": "a@b.example", "upn": "a@b.example"},
        {"userId": USER_ID, "account": {"homePage": "h", "name": "n"}},
    ],
)
def test_learner_needs_exactly_one_identifier(learner: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        make(learner=learner)


def test_unknown_fields_are_refused_so_typos_do_not_vanish() -> None:
    with pytest.raises(ValidationError, match="completionPercent"):
        make(completionPercent=50)


@pytest.mark.parametrize("percentage", [-1, 101, 12.5])
def test_completion_percentage_is_a_whole_number_from_0_to_100(percentage: float) -> None:
    with pytest.raises(ValidationError):
        make(completionPercentage=percentage)


def test_completed_with_a_lower_percentage_is_contradictory() -> None:
    with pytest.raises(ValidationError, match="contradicts"):
        make(status="completed", completionPercentage=40)


def test_completed_at_needs_status_completed() -> None:
    with pytest.raises(ValidationError, match="completedAt"):
        make(status="inProgress", completedAt="2026-11-20T14:03:00Z")


def test_not_started_with_progress_is_contradictory() -> None:
    with pytest.raises(ValidationError, match="notStarted"):
        make(status="notStarted", completionPercentage=10)


def test_a_given_course_activity_id_is_kept_as_sent() -> None:
    assert make(externalCourseActivityId="enrolment-77").external_course_activity_id == "enrolment-77"
    assert make().external_course_activity_id is None  # the queue side keys it, after resolution


def test_event_id_with_control_characters_is_refused() -> None:
    with pytest.raises(ValidationError):
        make(eventId="evt\n1")


def test_status_values_are_graphs() -> None:
    assert {s.value for s in CourseStatus} == {"notStarted", "inProgress", "completed"}


def test_published_json_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        "schemas/canonical-event.schema.json is stale: run `python -m shared.events.schema`"
    )
