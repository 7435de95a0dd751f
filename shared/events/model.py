"""The canonical learning event.

Every source format (our generic JSON, xAPI, Caliper, vendor webhooks) is translated into this one
model before anything is queued, so the queue side and Graph never see a vendor's shape. It is camelCase
on the wire because it is also the body of the bridge's own (generic) webhook format.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict, JsonValue

from shared.events.names import SOURCE_NAME_PATTERN

SourceName = Annotated[str, StringConstraints(pattern=SOURCE_NAME_PATTERN)]
# Ids travel as queue payloads, table keys and OData keys: no control characters, bounded length.
OpaqueId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=1024, strip_whitespace=True)]


def _to_utc(value: datetime) -> datetime:
    # 0001-01-01T00:00:00+01:00 is valid ISO 8601 but falls before year 1 in UTC: datetime raises
    # OverflowError, which pydantic does not turn into a validation error (only ValueError).
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the timestamp is out of range once converted to UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected (typos must not vanish)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=False
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class CourseStatus(StrEnum):
    NOT_STARTED = "notStarted"
    IN_PROGRESS = "inProgress"
    COMPLETED = "completed"

    @classmethod
    def parse(cls, value: object) -> CourseStatus | None:
        """Graph's value as ours; None for absent or values we do not know (unknownFutureValue)."""
        return cls(value) if isinstance(value, str) and value in cls._value2member_map_ else None


class Account(WireModel):
    """An account on a platform (xAPI style): the platform's home page and the learner's name there."""

    home_page: NonEmpty
    name: NonEmpty


class Learner(WireModel):
    """Who learned. Exactly one identifier; which one decides how the bridge finds the Entra user."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    user_id: uuid.UUID | None = Field(default=None, description="Entra (Azure AD) object id.")
    upn: NonEmpty | None = Field(default=None, description="userPrincipalName.")
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)] | None = Field(
        default=None, description="Mail address, matched against the user's mail."
    )
    account: Account | None = Field(
        default=None, description="Platform account; needs an identity mapping to resolve."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("user_id", "upn", "email", "account") if getattr(self, k) is not None]
        if len(given) != 1:
            names = ", ".join(to_camel(k) for k in given) or "none"
            raise ValueError(f"learner needs exactly one of userId, upn, email or account (got {names})")
        return self

    def identity_key(self) -> str:
        """A stable string for the learner, for caching its resolution (never logged: it is personal)."""
        if self.user_id is not None:
            return f"userId:{self.user_id}"
        if self.upn is not None:
            return f"upn:{self.upn.casefold()}"
        if self.email is not None:
            return f"email:{self.email.casefold()}"
        assert self.account is not None
        return f"account:{self.account.home_page}\x1f{self.account.name}"

    @property
    def kind(self) -> str:
        return self.identity_key().split(":", 1)[0]


class Course(WireModel):
    """The course as the source knows it; Viva Learning knows it by the same externalId."""

    external_id: OpaqueId
    title: NonEmpty | None = None
    url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://\S+$")] | None = Field(
        default=None,
        description=(
            "The course's web page. With `title`, it lets a source with the registerContent option "
            "register a course Viva Learning does not know yet (learningContent.contentWebUrl)."
        ),
    )


class AssignmentType(StrEnum):
    """learningAssignment.assignmentType as Graph takes it on input (the assignmentType enum's
    `unknownFutureValue` is a sentinel, `peerRecommended` is only ever returned)."""

    REQUIRED = "required"
    RECOMMENDED = "recommended"

    @classmethod
    def parse(cls, value: object) -> AssignmentType | None:
        return cls(value) if isinstance(value, str) and value in cls._value2member_map_ else None


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


#: Names zoneinfo lists that are no tz database zone: links to this machine's own zone, or data files.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def _iana_zone(value: str) -> str:
    if value not in _time_zones() or value in _NOT_ZONES or value.startswith(("posix/", "right/")):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)")
    return value


IanaZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_iana_zone)]


#: Notes are shown to the learner in Viva Learning; Graph's limit is not documented (its error table has
#: "length exceeded than {expectedLength}"), so the bridge bounds them itself.
MAX_NOTES = 2000
#: At least one character that is not whitespace (stripped, then not empty): `pattern` says so in the
#: JSON Schema, where minLength 1 would let "   " through.
Notes = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NOTES, strip_whitespace=True, pattern=r"\S")
]


def _present(*names: str) -> JsonDict:
    """JSON Schema: each of these properties is there and not null."""
    return {"required": list(names), "properties": {n: {"not": {"type": "null"}} for n in names}}


#: Assignment._stated's rules as JSON Schema (a null property is one not given, as in the model).
_ASSIGNMENT_RULES: list[JsonValue] = [
    {
        "if": {"required": ["withdrawn"], "properties": {"withdrawn": {"const": True}}},
        "then": {
            "properties": {
                n: {"type": "null"}
                for n in ("type", "assignedAt", "dueAt", "dueDate", "timeZone", "assigner", "notes")
            }
        },
        "else": _present("type"),
    },
    {"if": _present("dueDate"), "then": _present("timeZone")},
    {"if": _present("timeZone"), "then": _present("dueDate")},
    {"not": _present("dueAt", "dueDate")},
]


class Assignment(WireModel):
    """Someone assigned the course to the learner (a `learningAssignment` in Graph, "Assigned to you" in
    Viva Learning), or withdrew that assignment. Each statement is the whole assignment as it stands at
    `occurredAt`: the newest statement of a record wins (its type, due date and notes; a field it
    leaves out is cleared, except the assigner: one not named stays as an earlier statement named it),
    and a withdrawal newer than every statement ends the assignment.

    The rules `_stated` checks are in the JSON Schema too (`_ASSIGNMENT_RULES`), so a body the schema
    accepts is one the bridge accepts."""

    model_config = ConfigDict(json_schema_extra={"allOf": _ASSIGNMENT_RULES})

    withdrawn: bool = Field(
        default=False,
        description=(
            "true: the assignment was withdrawn at occurredAt (no other assignment field may be given). "
            "The record is deleted, or kept as self-initiated when the learner had progress."
        ),
    )
    type: AssignmentType | None = Field(
        default=None, description="required or recommended; required unless withdrawn."
    )
    assigned_at: UtcDatetime | None = Field(
        default=None,
        description=(
            "When it was assigned; default: the first statement's since the last withdrawal (its "
            "assignedAt, else its occurredAt)."
        ),
    )
    due_at: UtcDatetime | None = Field(
        default=None, description="When it is due, with a UTC offset. Or give dueDate and timeZone."
    )
    due_date: date | None = Field(
        default=None,
        description=(
            "The day it is due, as LMSs state it, in `timeZone`: the end of that day there (23:59:59), "
            "sent to Graph in UTC."
        ),
    )
    time_zone: IanaZone | None = Field(
        default=None, description="The IANA time zone (tz database name, e.g. Europe/Paris) of dueDate."
    )
    assigner: Learner | None = Field(
        default=None,
        description=(
            "Who assigned it, named like a learner (optional: without one, or with one not found in Entra,"
            " the assigner an earlier statement named stays)."
        ),
    )
    notes: Notes | None = Field(
        default=None, description=f"Text for the learner, at most {MAX_NOTES} characters."
    )

    @model_validator(mode="after")
    def _stated(self) -> Self:
        if (self.due_date is None) != (self.time_zone is None):
            raise ValueError("dueDate and timeZone go together")
        if self.due_date is not None and self.due_at is not None:
            raise ValueError("give dueAt or dueDate, not both")
        if self.withdrawn:
            fields = ("type", "assigned_at", "due_at", "due_date", "assigner", "notes")
            given = [k for k in fields if getattr(self, k) is not None]
            if given:
                names = ", ".join(to_camel(k) for k in given)
                raise ValueError(f"a withdrawn assignment takes no other field (got {names})")
        elif self.type is None:
            raise ValueError("an assignment needs its type (required or recommended)")
        try:
            self.due_utc()
        except (OverflowError, ValueError):
            raise ValueError("dueDate in its timeZone falls outside the dates Graph can hold") from None
        return self

    def due_utc(self) -> datetime | None:
        """When it is due, in UTC (a due date: the last second of that day in its time zone: one second
        before the next day begins there, which is right on days whose clocks change around midnight,
        where 23:59:59 happens twice or not at all)."""
        if self.due_date is not None and self.time_zone is not None:
            zone = ZoneInfo(self.time_zone)
            if self.due_date == date.max:  # no next day to count back from
                return _to_utc(datetime.combine(date.max, time(23, 59, 59), tzinfo=zone))
            next_day = datetime.combine(self.due_date + timedelta(days=1), time(0), tzinfo=zone)
            return _to_utc(next_day) - timedelta(seconds=1)
        return self.due_at


class CanonicalEvent(WireModel):
    """A learner's progress in a course at one moment, as reported by one source."""

    model_config = ConfigDict(title="CanonicalLearningEvent")

    event_id: OpaqueId = Field(
        description="The source's id for this event; the same on every redelivery (dedupe key)."
    )
    source: SourceName = Field(description="The configured source name the event came from.")
    occurred_at: UtcDatetime = Field(description="When it happened, with a UTC offset.")
    learner: Learner
    course: Course
    status: CourseStatus
    completion_percentage: Annotated[int, Field(ge=0, le=100)] | None = None
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    assignment: Assignment | None = Field(
        default=None,
        description=(
            "The course was assigned to the learner (or the assignment withdrawn): the record becomes a "
            "learningAssignment. Progress and completions of the same record keep updating it."
        ),
    )
    external_course_activity_id: OpaqueId | None = Field(
        default=None,
        description=(
            "The sender's own id for the record this event updates. It belongs to this source (another "
            "source sending the same id addresses another record), and the record keeps its learner "
            "and course. When absent the record is keyed by source, learner (as resolved in Entra) and "
            "course, so one person named by email one day and by UPN the next updates one record."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.status is CourseStatus.COMPLETED:
            if self.completion_percentage not in (None, 100):
                raise ValueError(
                    f"status completed contradicts completionPercentage {self.completion_percentage}"
                )
        elif self.completed_at is not None:
            raise ValueError(f"completedAt is only allowed with status completed, not {self.status}")
        if self.status is CourseStatus.NOT_STARTED and (self.completion_percentage or 0) > 0:
            raise ValueError("status notStarted contradicts a completionPercentage above 0")
        return self
