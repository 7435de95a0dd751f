"""360Learning webhooks, signed with Standard Webhooks.

Envelopes `{type, timestamp (epoch ms), data}`: `course.attempt.closed` completes the course when its
`reason` is `learnerFinished` (other, future reasons only mean "in progress"); and
`path.session.user.status.updated` gives a path's status. 360Learning also pushes bare xAPI
statements: those are read by the xAPI rules. Learners are 360Learning user ids, found through
`accountAttribute` (the default `learner` here is `account`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.config.settings import SourceSettings
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
from shared.sources.formats.xapi import XapiFormat
from shared.sources.mapping import Identifiers, LearnerFrom, VendorOptions, build_event, identifier, split

HOME_PAGE = "https://app.360learning.com"
PATH_STATUSES = {
    "successful": CourseStatus.COMPLETED,
    "onTime": CourseStatus.IN_PROGRESS,
    "late": CourseStatus.IN_PROGRESS,
    "awaitingCorrection": CourseStatus.IN_PROGRESS,
    "toRetake": CourseStatus.IN_PROGRESS,
    "unsuccessful": CourseStatus.IN_PROGRESS,
    "notYetStarted": CourseStatus.NOT_STARTED,
}


class ThreeSixtyOptions(VendorOptions):
    learner: LearnerFrom = "account"


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1)
    timestamp: int | float
    data: dict[str, Any]


class ThreeSixtyLearningFormat(SourceFormat):
    can_void = True  # voiding statements
    format_name: ClassVar[str] = "360learning"
    options_model: ClassVar[type[FormatOptions]] = ThreeSixtyOptions
    options: ThreeSixtyOptions

    def __init__(self, settings: SourceSettings, *, offline: bool = False) -> None:
        super().__init__(settings, offline=offline)
        self._verifier = None if offline else auth.StandardWebhooks(self.secret, self.name)
        xapi_settings = SourceSettings(
            name=settings.name,
            format="xapi",
            options={"accountAttribute": self.options.account_attribute}
            if self.options.account_attribute
            else {},
        )
        self._xapi = XapiFormat(xapi_settings, offline=True)  # parsing only: this format verifies

    def verify(self, delivery: Delivery) -> None:
        assert self._verifier is not None  # built unless offline, and offline never verifies
        self._verifier.verify(delivery)

    def parse(self, delivery: Delivery) -> ParseResult:
        document = load_json(delivery.body)
        if _looks_like_xapi(document):
            return self._xapi.parse(delivery)
        envelope = validate_body(Envelope, document, "a 360Learning webhook, nor xAPI statements")
        event_id = delivery.header("webhook-id") or derived_event_id(self.name, document)
        events, ignored = split([self._translate(envelope, event_id)])
        return ParseResult(events=events, ignored=ignored, item_ids=[event_id])

    def _translate(self, envelope: Envelope, event_id: str) -> CanonicalEvent | Ignored:
        data = envelope.data
        if envelope.type == "course.attempt.closed":
            finished = data.get("reason") == "learnerFinished"
            status = CourseStatus.COMPLETED if finished else CourseStatus.IN_PROGRESS
            course_id, when = data.get("courseId"), data.get("closedAt")
        elif envelope.type == "path.session.user.status.updated":
            mapped = PATH_STATUSES.get(str(data.get("status")))
            if mapped is None:
                return Ignored(
                    "statusNotProgress", event_id, f"path status {data.get('status')!r} is not progress"
                )
            status, course_id, when = mapped, data.get("pathId"), data.get("updatedAt")
        else:
            return Ignored("typeNotProgress", event_id, f"{envelope.type} says nothing about course progress")
        try:
            occurred = parse_timestamp(when if when else envelope.timestamp)
        except ValueError as exc:
            return Ignored("unmappable", event_id, str(exc))
        identifiers = Identifiers(
            home_page=HOME_PAGE,
            email=data.get("userEmail"),
            platform_id=identifier(data.get("userId")),
        )
        return build_event(
            self.name,
            event_id=event_id,
            occurred_at=occurred,
            learner=identifiers.choose(self.options.learner),
            course_id=course_id,
            status=status,
        )


def _looks_like_xapi(document: Any) -> bool:
    first = document[0] if isinstance(document, list) and document else document
    return isinstance(first, dict) and ("verb" in first or "statements" in first)
