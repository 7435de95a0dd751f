"""The sandbox's write validation: the safety net that catches bodies Graph would reject."""

import pytest

from devtools.graph_sandbox.errors import GraphHttpError
from devtools.graph_sandbox.schema import declared_properties, validate_write

SELF = "#microsoft.graph.learningSelfInitiatedCourse"


def valid(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "@odata.type": SELF,
        "externalcourseActivityId": "x",
        "learnerUserId": "u",
        "learningContentId": "c",
        "status": "inProgress",
        "completionPercentage": 40,
        "startedDateTime": "2026-11-20T14:03:00+00:00",
    }
    body.update(overrides)
    return body


def test_a_body_like_the_bridges_is_valid() -> None:
    validate_write("learningSelfInitiatedCourse", valid())


def test_inherited_properties_are_known() -> None:
    assert {
        "startedDateTime",
        "completionPercentage",
        "externalcourseActivityId",
        "id",
    } <= declared_properties("learningSelfInitiatedCourse")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"completed_date_time": None}, "Invalid property 'completed_date_time'"),
        ({"externalCourseActivityId": "x"}, "Invalid property"),
        ({"id": "abc"}, "read-only"),
        ({"status": "done"}, "status"),
        ({"completionPercentage": "40"}, "completionPercentage"),
        ({"startedDateTime": "2026-11-20"}, "startedDateTime"),
    ],
)
def test_bodies_graph_would_reject_are_400(override: dict[str, object], message: str) -> None:
    with pytest.raises(GraphHttpError, match=message) as caught:
        validate_write("learningSelfInitiatedCourse", valid(**override))
    assert caught.value.status == 400


def test_a_body_without_odata_type_is_validated_as_its_own_type() -> None:
    # The OpenAPI description marks @odata.type required everywhere; the pages require it only where
    # it picks a type (course activities: checked by the handlers, see test_sandbox_rules).
    validate_write(
        "learningContent", {"title": "T", "contentWebUrl": "https://x.example/c", "languageTag": "en-us"}
    )
