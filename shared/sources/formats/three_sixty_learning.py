"""360Learning webhooks, signed with Standard Webhooks.

Envelopes `{type, timestamp (epoch ms), data}`: `course.attempt.closed` completes the course when its
`reason` is `learnerFinished` (other, future reasons only mean "in progress"); and
`path.session.user.status.updated` gives a path's status. 360Learning also pushes bare xAPI
statements: those are read by the xAPI rules. Learners are 360Learning user ids, found through
`accountAttribute` (the default `learner` here is `account`).

Assignments (`assignments: true`, see `AssigningOptions`). 360Learning's webhook OpenAPI (Webhook Path
API, https://360learning.readme.io/reference-link/webhookpathsessionuserstatusupdated) has
`path.session.users.enrolled` and `.unenrolled`, but their payload is `{pathId, sessionId,
enrolledAt | unenrolledAt}` and names no learner ("Call the List all enrollments endpoint to get the
updated list of enrolled users"): the bridge calls no platform API, so they are ignored. What names the
learner is `path.session.user.status.updated`, "also emitted the first time a status is computed for a
learner after enrollment": with `assignments`, each such event states the path's assignment (the
source's `assignmentType`) along with its status (`sessionNotOpened` and `notYetStarted`: not started),
and `notEnrolled` withdraws it. No 360Learning webhook carries a due date, an assigner or notes (the
status payload is `userId, pathId, sessionId, enrollmentId, status, updatedAt`; `late` says a deadline
passed without giving it), so none is sent; courses are assigned through paths, and no course-level
assignment event exists (`course.attempt.closed` is progress only).
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
from shared.sources.mapping import AssigningOptions, Identifiers, LearnerFrom, build_event, identifier, split

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
#: Statuses that only mean something for an assigning source: enrolled, the session not open yet;
#: no longer enrolled (the assignment withdrawn).
SESSION_NOT_OPENED, NOT_ENROLLED = "sessionNotOpened", "notEnrolled"
ENROLMENT_TYPES = frozenset({"path.session.users.enrolled", "path.session.users.unenrolled"})


class ThreeSixtyOptions(AssigningOptions):
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
        assignment = None
        if envelope.type == "course.attempt.closed":
            finished = data.get("reason") == "learnerFinished"
            status = CourseStatus.COMPLETED if finished else CourseStatus.IN_PROGRESS
            course_id, when = data.get("courseId"), data.get("closedAt")
        elif envelope.type == "path.session.user.status.updated":
            path_status = str(data.get("status"))
            mapped = PATH_STATUSES.get(path_status)
            if self.options.assignments and path_status in (SESSION_NOT_OPENED, NOT_ENROLLED):
                mapped = CourseStatus.NOT_STARTED
            if self.options.assignments and mapped is not None:
                assignment = (
                    self.options.withdrawn() if path_status == NOT_ENROLLED else self.options.assigned()
                )
            if mapped is None:
                return Ignored(
                    "statusNotProgress", event_id, f"path status {data.get('status')!r} is not progress"
                )
            status, course_id, when = mapped, data.get("pathId"), data.get("updatedAt")
        elif envelope.type in ENROLMENT_TYPES:
            return Ignored(
                "learnerMissing",
                event_id,
                f"{envelope.type} names no learner (pathId, sessionId and a time only); the path's "
                "status updates carry the enrolment",
            )
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
            assignment=assignment,
        )


def _looks_like_xapi(document: Any) -> bool:
    first = document[0] if isinstance(document, list) and document else document
    return isinstance(first, dict) and ("verb" in first or "statements" in first)
