"""Docebo webhooks: `course.enrollment.completed` and enrollment status changes.

One delivery carries `payload` or, batched, `payloads[]` (up to 25) under a single `message_id`, so each
event gets its own id (`message_id:index`). Docebo timestamps have no zone: they are read in the
source's `timeZone` option (an IANA name, default UTC). Learners come as numeric `user_id`s, found
in Entra through `accountAttribute` (the default `learner` here is `account`). Docebo webhooks are
not signed: the source authenticates with a secret token in the URL path (default) or a header.

Assignments (`assignments: true`, see `AssigningOptions`). Docebo's "Webhooks events" article
(https://developer.docebo.com/v1/docs/webhooks-events, also help.docebo.com/hc/en-us/articles/
360020124479-Webhooks-events) names the enrollment events (`course.enrollment.created`, `.updated`,
`.completed`; an enrollment set to completed fires `.completed`, not `.updated`). Docebo calls an
enrollment's deadline the end of its validity period: "Deadline ... returns only enrollments that expire
between the current time and the specified time" (https://developer.docebo.com/docs/
docebo-connect-connector-enrollments); its "Enrolling users in courses" article
(https://help.docebo.com/hc/en-us/articles/360020124659) has the administrator choose the level
("Learners, Tutors, or Instructors") and then "whether to set an enrollment deadline". The payload field
names read here are not in any public Docebo page that could be read (the article's per-event payload
tables are beyond the part of it the stored copies hold); they are those of recorded payloads in public
integrations of these webhooks (github.com/graz-dev/docebo-webhook-listener, bruno-collection/events/
enrollment/course.enrollment.created.bru, and the DTOs of that and similar listeners), so check them
against your platform's deliveries with `translate --source`: `enrollment_date` (assignedAt),
`enrollment_date_end_validity` (the due date: a date alone is the end of that day in `timeZone`, a date
and time is read in `timeZone`), `subscribed_by_id` (who enrolled the learner: the assigner, named like
the learner when `learner` is `account`; an enrollment made by the learner themselves is no assignment)
and `level` (only an enrollment at the learner level is an assignment: `student`, as Docebo's API names
it, or `learner`, as its enrolment screen and the recorded payload do; tutors and instructors are not
assigned the course). `course.enrollment.created` and `.updated` state the
assignment (an `.updated` payload without `enrollment_date_end_validity` states progress only, so a
due date is never cleared by omission); `course.enrollment.deleted` withdraws it. `.completed`
completes it and says nothing of the assignment. Docebo documents no assignment type or notes: the type
is the source's `assignmentType`, and no notes are sent.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from shared.events.model import CanonicalEvent, CourseStatus, IanaZone
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
from shared.sources.mapping import AssigningOptions, Identifiers, LearnerFrom, build_event, identifier, split

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
CREATED = "course.enrollment.created"
DELETED = "course.enrollment.deleted"
#: Events whose payload states the enrollment (and so, with `assignments`, the assignment).
ASSIGNING_EVENTS = frozenset({"course.enrollment.updated", "course.enrollment.status_changed", CREATED})
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: The enrollment level of a learner: Docebo's API calls it `student`, its enrolment screen "Learners"
#: (beside "Tutors" and "Instructors"), and a recorded webhook payload says `learner`.
LEARNER_LEVELS = frozenset({"student", "learner"})


class DoceboOptions(AssigningOptions):
    learner: LearnerFrom = "account"
    #: The canonical event's own validator (shared.events.model.IanaZone): a zone this option takes
    #: is one an assignment's `timeZone` takes, so a deadline given as a date is never refused later.
    time_zone: IanaZone = Field(default="UTC", description="IANA zone of Docebo's zone-less timestamps.")
    token: auth.TokenOptions = Field(default_factory=lambda: auth.TokenOptions(location="path"))


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
        assigning = self.options.assignments and self._assignable(payload)
        status = self._status(message.event, payload, assigning)
        if status is None:
            return Ignored(
                "eventNotProgress", event_id, f"{message.event} says nothing about course progress"
            )
        zone = ZoneInfo(self.options.time_zone)
        identifiers = self._identifiers(message, payload)
        try:
            when = payload.get("completion_date") if status is CourseStatus.COMPLETED else None
            occurred = parse_timestamp(when or payload.get("fired_at") or payload.get("update_date"), zone)
            completed = optional_timestamp(when, zone)
            assignment = self._assignment(message.event, payload, identifiers) if assigning else None
        except ValueError as exc:
            return Ignored("unmappable", event_id, str(exc))
        return build_event(
            self.name,
            event_id=event_id,
            occurred_at=occurred,
            learner=identifiers.choose(self.options.learner),
            course_id=payload.get("course_id"),
            title=payload.get("course_name"),
            status=status,
            completed_at=completed,
            assignment=assignment,
        )

    @staticmethod
    def _identifiers(message: Message, payload: dict[str, Any]) -> Identifiers:
        return Identifiers(
            home_page=f"https://{message.original_domain or 'docebo'}",
            email=payload.get("email") or payload.get("user_email"),
            login=payload.get("username"),
            platform_id=identifier(payload.get("user_id")),
        )

    @staticmethod
    def _assignable(payload: dict[str, Any]) -> bool:
        """A learner's enrollment made by someone else: at the learner level (`student` or `learner`,
        or no level), not subscribed by the learner."""
        level = payload.get("level")
        if level is not None and str(level).strip().lower() not in LEARNER_LEVELS:
            return False
        by = identifier(payload.get("subscribed_by_id"))
        return by is None or by != identifier(payload.get("user_id"))

    def _assignment(
        self, event: str, payload: dict[str, Any], identifiers: Identifiers
    ) -> dict[str, Any] | None:
        """The assignment the payload states: withdrawn by `.deleted`; stated by `.created`, and by
        `.updated` when it carries the validity end; None otherwise. Raises ValueError for dates that
        are not dates."""
        if event == DELETED:
            return self.options.withdrawn()
        states_it = event == CREATED or "enrollment_date_end_validity" in payload
        if event not in ASSIGNING_EVENTS or not states_it:
            return None
        zone = ZoneInfo(self.options.time_zone)
        due = payload.get("enrollment_date_end_validity")
        due_fields: dict[str, Any] = {}
        if isinstance(due, str) and DATE_ONLY.match(due.strip()):
            due_fields = {"dueDate": date.fromisoformat(due.strip()), "timeZone": self.options.time_zone}
        elif due not in (None, ""):
            due_fields = {"dueAt": parse_timestamp(due, zone)}
        assigner = None
        by = identifier(payload.get("subscribed_by_id"))
        if by is not None and self.options.learner == "account":
            assigner = Identifiers(home_page=identifiers.home_page, platform_id=by).choose("account")
        return self.options.assigned(
            assignedAt=optional_timestamp(payload.get("enrollment_date") or None, zone),
            assigner=assigner,
            **due_fields,
        )

    @staticmethod
    def _status(event: str, payload: dict[str, Any], assigning: bool) -> CourseStatus | None:
        if event == "course.enrollment.completed":
            return CourseStatus.COMPLETED
        if event in STATUS_EVENTS:
            status = payload.get("status")
            if status is None and assigning and event == CREATED:
                return CourseStatus.NOT_STARTED  # a new enrollment, assigned: not started yet
            return STATUSES.get(str(status or "").lower())
        if event == DELETED and assigning:
            return CourseStatus.NOT_STARTED  # the withdrawal's status: it changes no progress
        return None
