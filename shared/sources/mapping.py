"""Helpers every platform adapter uses to turn its payload into canonical events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationError

from shared.events.model import AssignmentType, CanonicalEvent, CourseStatus
from shared.sources.base import FormatOptions, Ignored

LearnerFrom = Literal["email", "upn", "userId", "account"]


class VendorOptions(FormatOptions):
    """Options shared by the vendor formats: which of the platform's identifiers names the learner.

    `email` (the default where the platform sends one): the user's mail, UPN or otherMails;
    `upn`: the platform's login/email taken as the userPrincipalName; `userId`: the platform sends the
    Entra object id; `account`: the platform's own user id, found through `accountAttribute`.
    """

    learner: LearnerFrom = "email"


class AssigningOptions(VendorOptions):
    """Options of the vendor formats whose enrolments can be assignments (Docebo, Canvas, 360Learning).

    An enrolment says that the learner is enrolled, not who decided it: a platform where learners enrol
    themselves would turn every catalogue click into "Assigned to you". So enrolments become
    `learningAssignment`s only when the source says so (`assignments: true`, off by default), with the
    type it names (`assignmentType`, `required` by default); the deployment must allow assignments too
    (BRIDGE_ASSIGNMENTS_ENABLED): otherwise the source reads as with the option off
    (SourceFormat.for_deployment), its progress and completions self-initiated.
    """

    assignments: bool = Field(
        default=False, description="The platform's enrolments are assignments (learningAssignment)."
    )
    assignment_type: AssignmentType = AssignmentType.REQUIRED

    def assigned(self, **fields: Any) -> dict[str, Any] | None:
        """The canonical `assignment` of an enrolment (None when the source does not assign): the
        configured type and the fields given (None values left out)."""
        if not self.assignments:
            return None
        return {"type": self.assignment_type.value, **{k: v for k, v in fields.items() if v is not None}}

    def withdrawn(self) -> dict[str, Any] | None:
        """The canonical withdrawal of an enrolment's assignment (None when the source does not assign)."""
        return {"withdrawn": True} if self.assignments else None


@dataclass(frozen=True)
class Identifiers:
    """What a platform tells about a learner; `choose` picks the configured one."""

    home_page: str
    email: str | None = None
    login: str | None = None
    platform_id: str | None = None

    def choose(self, learner_from: LearnerFrom) -> dict[str, Any] | None:
        if learner_from == "email" and self.email:
            return {"email": self.email}
        if learner_from == "upn" and (self.login or self.email):
            return {"upn": self.login or self.email}
        if learner_from == "userId" and self.platform_id:
            return {"userId": self.platform_id}
        if learner_from == "account" and self.platform_id:
            return {"account": {"homePage": self.home_page, "name": self.platform_id}}
        return None


def build_event(
    source: str,
    *,
    event_id: str,
    occurred_at: datetime,
    learner: dict[str, Any] | None,
    course_id: Any,
    status: CourseStatus,
    title: str | None = None,
    percentage: int | None = None,
    started_at: datetime | None = None,
    completed_at: datetime | None = None,
    assignment: dict[str, Any] | None = None,
) -> CanonicalEvent | Ignored:
    """A canonical event, or the reason the item cannot become one (acknowledged, never rejected)."""
    if learner is None:
        return Ignored(
            "learnerMissing", event_id, "The item does not carry the configured learner identifier."
        )
    if course_id in (None, ""):
        return Ignored("courseMissing", event_id, "The item names no course.")
    completed = status is CourseStatus.COMPLETED
    try:
        event = CanonicalEvent.model_validate(
            {
                "eventId": event_id,
                "source": source,
                "occurredAt": occurred_at,
                "learner": learner,
                "course": {"externalId": str(course_id), "title": title or None},
                "status": status,
                "completionPercentage": 100 if completed else percentage,
                "startedAt": started_at,
                "completedAt": (completed_at or occurred_at) if completed else None,
                "assignment": assignment,
            }
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = "/".join(str(part) for part in first["loc"])
        return Ignored("unmappable", event_id, f"{where}: {first['msg']}")
    if event.assignment is not None:
        try:  # a due date at the calendar's edge (9999-12-31 west of UTC) is valid but has no UTC instant
            event.assignment.due_utc()
        except ValueError as exc:
            return Ignored("unmappable", event_id, f"assignment: {exc}")
    return event


def identifier(value: Any) -> str | None:
    """A platform id as text (platforms send ids as numbers or strings), or None when absent."""
    return None if value is None or value == "" else str(value)


def as_dict(value: Any) -> dict[str, Any]:
    """A nested payload object, or {} when the platform left it out or sent something else."""
    return value if isinstance(value, dict) else {}


def split(items: list[CanonicalEvent | Ignored]) -> tuple[list[CanonicalEvent], list[Ignored]]:
    events = [i for i in items if isinstance(i, CanonicalEvent)]
    ignored = [i for i in items if isinstance(i, Ignored)]
    return events, ignored
