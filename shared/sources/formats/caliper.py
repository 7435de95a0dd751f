"""IMS Caliper Analytics 1.1 and 1.2 envelopes, sent by a sensor with a Bearer token.

`{sensor, sendTime, dataVersion, data[]}`; `data` mixes events and entities, and only events mean
anything here. Completion comes only from a course-level signal: `Completed` on a CourseOffering,
CourseSection or Course, or an AssignableEvent `Completed`. A ToolUseEvent 1.2 `UnitsCompleted`
measure gives a percentage. Every other event (navigation, views, an assessment item completed,
grading) means "in progress" at most, for the course in its `group`.

The learner is the Person's IRI (for grading events, the attempt's assignee): an account whose name the
source's `accountAttribute` maps to an Entra user. The answers are a Caliper endpoint's: 200 with an
empty body, 400 for a bad envelope, 401, 415, and 422 for an unsupported `dataVersion`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.events.model import CanonicalEvent, CourseStatus
from shared.sources import auth
from shared.sources.base import (
    Accepted,
    Delivery,
    FormatOptions,
    Ignored,
    ParseResult,
    SourceFormat,
    load_json,
    problems_from_validation,
)
from shared.sources.exceptions import FieldProblem, InvalidPayload, UnsupportedVersion
from shared.sources.fields import parse_timestamp, ratio_percentage
from shared.sources.mapping import build_event, split

DATA_VERSIONS = {
    "http://purl.imsglobal.org/ctx/caliper/v1p1": "1.1",
    "http://purl.imsglobal.org/ctx/caliper/v1p2": "1.2",
}
COURSE_TYPES = frozenset({"CourseOffering", "CourseSection", "Course"})
MAX_ITEMS = 500
#: The data version of bare events without an @context (Caliper 1.2 made the envelope optional in
#: practice: Open edX's router sends 1.2 events one by one).
BARE_DEFAULT_VERSION = "http://purl.imsglobal.org/ctx/caliper/v1p2"


class CaliperOptions(FormatOptions):
    learner_name: Literal["lastSegment", "iri"] = Field(
        default="lastSegment",
        description="The account name looked up through accountAttribute: the last segment of the "
        "Person's IRI (https://lms.example/users/554433 -> 554433), or the whole IRI.",
    )
    course_id: Literal["iri", "lastSegment", "courseNumber"] = Field(
        default="iri", description="The Viva Learning externalId of a course entity."
    )


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    sensor: str = Field(min_length=1)
    send_time: str = Field(alias="sendTime", min_length=1)
    data_version: str = Field(alias="dataVersion", min_length=1)
    data: list[Any] = Field(min_length=1, max_length=MAX_ITEMS)


class CaliperFormat(SourceFormat):
    format_name: ClassVar[str] = "caliper"
    options_model: ClassVar[type[FormatOptions]] = CaliperOptions
    options: CaliperOptions

    def verify(self, delivery: Delivery) -> None:
        auth.verify_bearer(delivery, self.secret)

    def parse(self, delivery: Delivery) -> ParseResult:
        document = load_json(delivery.body)
        enveloped = _enveloped(document)
        try:
            envelope = Envelope.model_validate(enveloped)
        except ValidationError as exc:
            problems = problems_from_validation(exc)
            if enveloped is not document:  # bare events: point into them, not the envelope built here
                problems = [_into_bare(problem, document) for problem in problems]
            raise InvalidPayload("Not a Caliper envelope; see errors.", problems) from None
        if envelope.data_version not in DATA_VERSIONS:
            known = ", ".join(DATA_VERSIONS)
            raise UnsupportedVersion(f"dataVersion {envelope.data_version} is not supported ({known} are).")
        items = [self._translate(item, index) for index, item in enumerate(envelope.data) if _is_event(item)]
        events, ignored = split(items)
        ids = [_text(_entity(item).get("id")) or f"data/{n}" for n, item in enumerate(envelope.data)]
        return ParseResult(events=events, ignored=ignored, item_ids=ids)

    def accepted(self, result: ParseResult, endpoint: str = "webhook") -> Accepted:
        return Accepted(200, None)

    def _translate(self, item: dict[str, Any], index: int) -> CanonicalEvent | Ignored:
        event_id = _text(item.get("id")) or ""
        if not event_id or not item.get("eventTime"):
            return Ignored("invalidEvent", f"data/{index}", "A Caliper event needs an id and an eventTime.")
        learner = self._learner(item)
        if learner is None:
            return Ignored(
                "actorNotPerson", event_id, "Neither the actor nor an attempt's assignee is a Person."
            )
        mapped = _course_and_status(item)
        if isinstance(mapped, str):
            return Ignored("notCourseLevel", event_id, mapped)
        course, status, percentage = mapped
        try:
            occurred = parse_timestamp(item["eventTime"])
        except ValueError as exc:
            return Ignored("invalidEvent", event_id, str(exc))
        return build_event(
            self.name,
            event_id=event_id,
            occurred_at=occurred,
            learner=learner,
            course_id=self._course_id(course),
            title=course.get("name"),
            status=status,
            percentage=percentage,
        )

    def _learner(self, item: dict[str, Any]) -> dict[str, Any] | None:
        person = _entity(item.get("actor"))
        if person.get("type") != "Person":
            target = _entity(item.get("object"))
            person = _entity(target.get("assignee")) if target.get("type") == "Attempt" else {}
        iri = person.get("id")
        if not isinstance(iri, str) or not iri:
            return None
        try:
            parts = urlsplit(iri)
        except ValueError:  # e.g. "http://[" (an unclosed IPv6 host)
            return None
        home_page = f"{parts.scheme}://{parts.netloc}" if parts.netloc else iri
        name = iri if self.options.learner_name == "iri" else iri.rstrip("/").rsplit("/", 1)[-1]
        return {"account": {"homePage": home_page, "name": name}}

    def _course_id(self, course: dict[str, Any]) -> Any:
        if self.options.course_id == "courseNumber" and course.get("courseNumber"):
            return course["courseNumber"]
        iri = str(course.get("id", ""))
        return iri.rstrip("/").rsplit("/", 1)[-1] if self.options.course_id == "lastSegment" else iri


def _enveloped(document: Any) -> Any:
    """A bare Event, or an array of Events (as some sensors and Open edX's event routing send them),
    read as the envelope they would have had; the data version comes from the events' @context."""
    if isinstance(document, dict) and "data" not in document and _is_event(document):
        items: list[Any] = [document]
    elif isinstance(document, list) and document and all(_is_event(item) for item in document):
        items = document
    elif isinstance(document, dict):
        return document
    else:
        raise InvalidPayload(
            "The body must be a Caliper envelope {sensor, sendTime, dataVersion, data}, an Event, "
            "or an array of Events."
        )
    context = items[0].get("@context")
    return {
        "sensor": "unenveloped",
        "sendTime": "unenveloped",
        "dataVersion": _text(context) or BARE_DEFAULT_VERSION,
        "data": items,
    }


def _into_bare(problem: FieldProblem, document: Any) -> FieldProblem:
    """A problem with the envelope `_enveloped` built, pointed into the bare event(s) that were sent:
    `/data/i/...` is `/i/...` in an array and the root in a single event; `/data` itself is the array
    (the root). What only the built envelope has (sensor, sendTime, dataVersion) is the whole body."""
    pointer = problem.pointer
    if pointer == "/data" or pointer.startswith("/data/"):
        rest = pointer.removeprefix("/data")
        if isinstance(document, dict):  # one event, read as data[0]
            rest = rest.removeprefix("/0")
        return FieldProblem(rest or "/", problem.detail)
    return FieldProblem("/", problem.detail)


def _is_event(item: Any) -> bool:
    return isinstance(item, dict) and (_text(item.get("type")) or "").endswith("Event") and "action" in item


def _text(value: Any) -> str | None:
    """A string field, or None when the sender put anything else there (a list, a number)."""
    return value if isinstance(value, str) and value else None


def _entity(value: Any) -> dict[str, Any]:
    """Caliper entities are objects or bare IRIs; fields read from them are strings or nothing."""
    if isinstance(value, dict):
        return value
    return {"id": value} if isinstance(value, str) else {}


def _course_and_status(item: dict[str, Any]) -> tuple[dict[str, Any], CourseStatus, int | None] | str:
    obj = _entity(item.get("object"))
    group = _entity(item.get("group"))
    action, event_type = _text(item.get("action")), _text(item.get("type"))
    object_is_course, group_is_course = _is_course(obj), _is_course(group)
    if action == "Completed" and object_is_course:
        return obj, CourseStatus.COMPLETED, 100
    if action == "Completed" and event_type == "AssignableEvent":
        return obj, CourseStatus.COMPLETED, 100
    course = group if group_is_course else obj if object_is_course else None
    if course is None:
        return f"{event_type} {action} has no course-level object or group"
    percentage = _units_completed(item) if event_type == "ToolUseEvent" else None
    return course, CourseStatus.IN_PROGRESS, percentage


def _is_course(entity: dict[str, Any]) -> bool:
    return _text(entity.get("type")) in COURSE_TYPES


def _units_completed(item: dict[str, Any]) -> int | None:
    measures = _entity(item.get("generated")).get("items")
    for measure in measures if isinstance(measures, list) else []:
        if isinstance(measure, dict) and measure.get("metric") == "UnitsCompleted":
            value, maximum = measure.get("metricValue"), measure.get("maxMetricValue")
            if isinstance(value, int | float) and isinstance(maximum, int | float):
                return ratio_percentage(value, maximum)
    return None
