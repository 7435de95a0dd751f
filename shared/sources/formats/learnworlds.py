"""LearnWorlds webhooks: `courseCompleted`.

Authenticated by the shared token LearnWorlds puts in the `Learnworlds-Webhook-Signature` header (the
source's secret). Deliveries carry no event id, so one is derived from the content (a redelivery of
the same completion gets the same id). Timestamps are epoch seconds, as floats.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.events.model import CanonicalEvent, CourseStatus
from shared.sources import auth
from shared.sources.base import (
    Delivery,
    FormatOptions,
    Ignored,
    ParseResult,
    SourceFormat,
    load_json,
    validate_body,
)
from shared.sources.fields import derived_event_id, parse_timestamp
from shared.sources.mapping import Identifiers, VendorOptions, as_dict, build_event, identifier, split

SIGNATURE_HEADER = "Learnworlds-Webhook-Signature"


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1)
    data: dict[str, Any]


class LearnWorldsFormat(SourceFormat):
    format_name: ClassVar[str] = "learnworlds"
    options_model: ClassVar[type[FormatOptions]] = VendorOptions
    options: VendorOptions

    def verify(self, delivery: Delivery) -> None:
        auth.verify_token(
            delivery, self.secret, auth.TokenOptions(location="header", header=SIGNATURE_HEADER)
        )

    def parse(self, delivery: Delivery) -> ParseResult:
        document = load_json(delivery.body)
        envelope = validate_body(Envelope, document, "a LearnWorlds webhook")
        event_id = derived_event_id(self.name, document)
        events, ignored = split([self._translate(envelope, event_id, delivery)])
        return ParseResult(events=events, ignored=ignored, item_ids=[event_id])

    def _translate(self, envelope: Envelope, event_id: str, delivery: Delivery) -> CanonicalEvent | Ignored:
        if envelope.type != "courseCompleted":
            return Ignored("typeNotProgress", event_id, f"{envelope.type} says nothing about course progress")
        data = envelope.data
        user = as_dict(data.get("user"))
        course = as_dict(data.get("course"))
        when = data.get("completed_at") or data.get("created")
        try:
            occurred = parse_timestamp(when) if when is not None else delivery.received_at
        except ValueError as exc:
            return Ignored("unmappable", event_id, str(exc))
        identifiers = Identifiers(
            home_page="https://learnworlds.com",
            email=user.get("email"),
            login=user.get("username"),
            platform_id=identifier(user.get("id")),
        )
        return build_event(
            self.name,
            event_id=event_id,
            occurred_at=occurred,
            learner=identifiers.choose(self.options.learner),
            course_id=course.get("id"),
            title=course.get("title"),
            status=CourseStatus.COMPLETED,
        )
