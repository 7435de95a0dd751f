"""Teachable webhooks: `Enrollment.completed` and `LectureProgress.created`.

Teachable does not sign its webhooks, so the source authenticates with a secret token, by default the
last segment of the URL it is given (`/api/webhooks/{source}/{token}`), or a header (`token` option).
Deliveries are a JSON array of envelopes even for one event (a bare object is accepted too).
`percent_complete` on LectureProgress is the course's percentage. Teachable switches a webhook off
after repeated failures, so everything valid is answered 200, including events ignored here.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.events.model import CanonicalEvent, CourseStatus
from shared.sources import auth
from shared.sources.base import (
    MAX_EVENTS_PER_DELIVERY,
    Accepted,
    Delivery,
    FormatOptions,
    Ignored,
    ParseResult,
    SourceFormat,
    load_json,
    validate_body,
)
from shared.sources.exceptions import InvalidPayload
from shared.sources.fields import optional_percentage, optional_timestamp, parse_timestamp
from shared.sources.mapping import Identifiers, VendorOptions, as_dict, build_event, identifier, split

TYPES = {"Enrollment.completed": CourseStatus.COMPLETED, "LectureProgress.created": CourseStatus.IN_PROGRESS}


class TeachableOptions(VendorOptions):
    token: auth.TokenOptions = Field(default_factory=lambda: auth.TokenOptions(location="path"))


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1)
    id: int | str
    created: str
    hook_event_id: int | str | None = None
    object: dict[str, Any]


_ENVELOPES = TypeAdapter(list[Envelope])


class TeachableFormat(SourceFormat):
    format_name: ClassVar[str] = "teachable"
    options_model: ClassVar[type[FormatOptions]] = TeachableOptions
    options: TeachableOptions

    def verify(self, delivery: Delivery) -> None:
        auth.verify_token(delivery, self.secret, self.options.token)

    def parse(self, delivery: Delivery) -> ParseResult:
        document = load_json(delivery.body)
        items = document if isinstance(document, list) else [document]
        if not items:
            raise InvalidPayload("The body holds no event.")
        if len(items) > MAX_EVENTS_PER_DELIVERY:  # the same bound as every other batch format
            raise InvalidPayload(
                f"A delivery holds at most {MAX_EVENTS_PER_DELIVERY} events; this one has {len(items)}."
            )
        envelopes = validate_body(_ENVELOPES, items, "Teachable webhook events")
        events, ignored = split([self._translate(e) for e in envelopes])
        return ParseResult(events=events, ignored=ignored, item_ids=[_event_id(e) for e in envelopes])

    def accepted(self, result: ParseResult, endpoint: str = "webhook") -> Accepted:
        return Accepted(200, super().accepted(result, endpoint).body)

    def _translate(self, envelope: Envelope) -> CanonicalEvent | Ignored:
        event_id = _event_id(envelope)
        status = TYPES.get(envelope.type)
        if status is None:
            return Ignored("typeNotProgress", event_id, f"{envelope.type} says nothing about course progress")
        obj = envelope.object
        user = as_dict(obj.get("user"))
        course = as_dict(obj.get("course"))
        try:
            occurred = parse_timestamp(envelope.created)
            percentage = optional_percentage(obj.get("percent_complete"))
            completed = optional_timestamp(obj.get("completed_at"))
        except ValueError as exc:
            return Ignored("unmappable", event_id, str(exc))
        identifiers = Identifiers(
            home_page="https://teachable.com",
            email=user.get("email"),
            platform_id=identifier(user.get("id")),
        )
        return build_event(
            self.name,
            event_id=event_id,
            occurred_at=occurred,
            learner=identifiers.choose(self.options.learner),
            course_id=course.get("id", obj.get("course_id")),
            title=course.get("name"),
            status=status,
            percentage=percentage,
            completed_at=completed,
        )


def _event_id(envelope: Envelope) -> str:
    return str(envelope.hook_event_id if envelope.hook_event_id is not None else envelope.id)
