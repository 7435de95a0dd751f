"""Thinkific webhooks: `enrollment.progress` and `enrollment.completed`.

Signed with `X-Thinkific-Hmac-Sha256`, the hex HMAC-SHA256 of the raw body keyed with the site's API
key (or the app's client secret): that key is the source's secret. `percentage_completed` arrives as a
string ("24.0"). Thinkific's test payloads carry `completed_at` even on progress events, so completion
comes only from the `enrollment.completed` topic, never from `completed_at` alone.
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
from shared.sources.fields import optional_percentage, optional_timestamp, parse_timestamp
from shared.sources.mapping import Identifiers, VendorOptions, as_dict, build_event, identifier, split

SIGNATURE_HEADER = "X-Thinkific-Hmac-Sha256"
TOPICS = {"enrollment.progress": CourseStatus.IN_PROGRESS, "enrollment.completed": CourseStatus.COMPLETED}


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | int
    resource: str = Field(min_length=1)
    action: str = Field(min_length=1)
    created_at: str
    tenant_id: str | int | None = None
    payload: dict[str, Any]


class ThinkificFormat(SourceFormat):
    format_name: ClassVar[str] = "thinkific"
    options_model: ClassVar[type[FormatOptions]] = VendorOptions
    options: VendorOptions

    def verify(self, delivery: Delivery) -> None:
        auth.verify_hmac_sha256_hex(delivery, self.secret, SIGNATURE_HEADER)

    def parse(self, delivery: Delivery) -> ParseResult:
        envelope = validate_body(Envelope, load_json(delivery.body), "a Thinkific webhook")
        item = self._translate(envelope)
        events, ignored = split([item])
        return ParseResult(events=events, ignored=ignored, item_ids=[str(envelope.id)])

    def _translate(self, envelope: Envelope) -> CanonicalEvent | Ignored:
        event_id = str(envelope.id)
        topic = f"{envelope.resource}.{envelope.action}"
        status = TOPICS.get(topic)
        if status is None:
            return Ignored("topicNotProgress", event_id, f"topic {topic} says nothing about course progress")
        payload = envelope.payload
        user, course = as_dict(payload.get("user")), as_dict(payload.get("course"))
        try:
            percentage = optional_percentage(payload.get("percentage_completed"))
            occurred = parse_timestamp(envelope.created_at)
            started = optional_timestamp(payload.get("started_at"))
            completed = optional_timestamp(payload.get("completed_at"))
        except ValueError as exc:
            return Ignored("unmappable", event_id, str(exc))
        identifiers = Identifiers(
            home_page=f"https://thinkific.com/tenants/{envelope.tenant_id}",
            email=user.get("email"),
            platform_id=identifier(user.get("id")),
        )
        return build_event(
            self.name,
            event_id=event_id,
            occurred_at=occurred,
            learner=identifiers.choose(self.options.learner),
            course_id=course.get("id", payload.get("course_id")),
            title=course.get("name"),
            status=status,
            percentage=percentage,
            started_at=started,
            completed_at=completed,  # build_event keeps it for completions only
        )
