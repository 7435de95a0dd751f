"""Docebo webhooks: `course.enrollment.completed` and enrollment status changes.

One delivery carries `payload` or, batched, `payloads[]` (up to 25) under a single `message_id`, so each
event gets its own id (`message_id:index`). Docebo timestamps have no zone: they are read in the
source's `timeZone` option (an IANA name, default UTC). Learners come as numeric `user_id`s, found
in Entra through `accountAttribute` (the default `learner` here is `account`). Docebo webhooks are
not signed: the source authenticates with a secret token in the URL path (default) or a header.
"""

from __future__ import annotations

from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
from shared.sources.exceptions import InvalidPayload
from shared.sources.fields import optional_timestamp, parse_timestamp
from shared.sources.mapping import Identifiers, LearnerFrom, VendorOptions, build_event, identifier, split

MAX_PAYLOADS = 25
#: Enrollment statuses as Docebo names them, and what they mean here.
STATUSES = {
    "completed": CourseStatus.COMPLETED,
    "in_progress": CourseStatus.IN_PROGRESS,
    "in progress": CourseStatus.IN_PROGRESS,
    "subscribed": CourseStatus.NOT_STARTED,
    "enrolled": CourseStatus.NOT_STARTED,
}
STATUS_EVENTS = frozenset(
    {"course.enrollment.updated", "course.enrollment.status_changed", "course.enrollment.created"}
)


class DoceboOptions(VendorOptions):
    learner: LearnerFrom = "account"
    time_zone: str = Field(default="UTC", description="IANA zone of Docebo's zone-less timestamps.")
    token: auth.TokenOptions = Field(default_factory=lambda: auth.TokenOptions(location="path"))

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    message_id: str | int
    event: str = Field(min_length=1)
    original_domain: str | None = None
    payload: dict[str, Any] | None = None
    payloads: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_PAYLOADS)


class DoceboFormat(SourceFormat):
    format_name: ClassVar[str] = "docebo"
    options_model: ClassVar[type[FormatOptions]] = DoceboOptions
    options: DoceboOptions

    def verify(self, delivery: Delivery) -> None:
        auth.verify_token(delivery, self.secret, self.options.token)

    def parse(self, delivery: Delivery) -> ParseResult:
        message = validate_body(Message, load_json(delivery.body), "a Docebo webhook")
        if message.payloads is not None:
            payloads = [(f"{message.message_id}:{i}", p) for i, p in enumerate(message.payloads)]
        elif message.payload is not None:
            payloads = [(str(message.message_id), message.payload)]
        else:
            raise InvalidPayload("A Docebo webhook carries `payload` or `payloads`.")
        items = [self._translate(message, event_id, payload) for event_id, payload in payloads]
        events, ignored = split(items)
        return ParseResult(events=events, ignored=ignored, item_ids=[event_id for event_id, _ in payloads])

    def _translate(
        self, message: Message, event_id: str, payload: dict[str, Any]
    ) -> CanonicalEvent | Ignored:
        status = self._status(message.event, payload)
        if status is None:
            return Ignored(
                "eventNotProgress", event_id, f"{message.event} says nothing about course progress"
            )
        zone = ZoneInfo(self.options.time_zone)
        try:
            when = payload.get("completion_date") if status is CourseStatus.COMPLETED else None
            occurred = parse_timestamp(when or payload.get("fired_at") or payload.get("update_date"), zone)
            completed = optional_timestamp(when, zone)
        except ValueError as exc:
            return Ignored("unmappable", event_id, str(exc))
        identifiers = Identifiers(
            home_page=f"https://{message.original_domain or 'docebo'}",
            email=payload.get("email") or payload.get("user_email"),
            login=payload.get("username"),
            platform_id=identifier(payload.get("user_id")),
        )
        return build_event(
            self.name,
            event_id=event_id,
            occurred_at=occurred,
            learner=identifiers.choose(self.options.learner),
            course_id=payload.get("course_id"),
            title=payload.get("course_name"),
            status=status,
            completed_at=completed,
        )

    @staticmethod
    def _status(event: str, payload: dict[str, Any]) -> CourseStatus | None:
        if event == "course.enrollment.completed":
            return CourseStatus.COMPLETED
        if event in STATUS_EVENTS:
            return STATUSES.get(str(payload.get("status", "")).lower())
        return None
