"""xAPI 1.0.x / 2.0 (IEEE 9274.1.1) statements, cmi5 included.

A body is one statement, an array of them, or an LRS forwarding envelope `{"statements": [...]}`. It
comes to `/api/webhooks/{source}` or, answering as an LRS does, to `/api/xapi/{source}/statements`.

A valid statement the bridge cannot use (an actor it cannot resolve, a StatementRef or SubStatement
object, a verb that says nothing about course progress, a sub-activity without a course parent) is
acknowledged and reported as ignored with its reason: rejecting valid statements makes an LRS retry or
switch forwarding off. Only what is not xAPI is refused with 400. The mapping rules are in
docs/connect/xapi.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from shared.config.settings import SourceSettings
from shared.events.model import CanonicalEvent, CourseStatus
from shared.events.queue import Voiding
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
from shared.sources.exceptions import FieldProblem, InvalidPayload
from shared.sources.fields import derived_event_id, optional_percentage, parse_timestamp
from shared.sources.mapping import build_event, split
from shared.sources.xapi_statement import statement_problems

SUPPORTED_VERSIONS = ("1.0", "2.0")
ANSWER_VERSION = "1.0.3"
CMI5_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
MAX_STATEMENTS = 500
MAX_PROBLEMS = 100  # a problem+json answer that names the first hundred is enough to fix a sender

#: Verbs by the last segment of their IRI (ADL, cmi5, activitystrea.ms and vendors all end alike).
COMPLETING = frozenset({"completed", "passed", "satisfied", "complete"})
NEVER_COMPLETING = frozenset({"failed", "now_failed"})
IN_PROGRESS = frozenset({"initialized", "launched", "attempted", "experienced", "progressed"})
STARTING = frozenset({"initialized", "launched"})
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


class XapiOptions(FormatOptions):
    auth: Literal["basic", "bearer", "standardWebhooks"] = Field(
        default="basic",
        description="basic: the secret is `key:secret` (as LRS clients send); bearer: a token; "
        "standardWebhooks: a whsec_ secret (360Learning and other pushers that sign).",
    )
    course_id: Literal["iri", "lastSegment"] = Field(
        default="iri", description="The Viva Learning externalId: the activity IRI, or its last segment."
    )


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Account(_Lenient):
    home_page: str = Field(alias="homePage", min_length=1)
    name: str = Field(min_length=1)


class Actor(_Lenient):
    object_type: Literal["Agent", "Group"] | None = Field(default=None, alias="objectType")
    mbox: str | None = None
    mbox_sha1sum: str | None = None
    openid: str | None = None
    account: Account | None = None

    @field_validator("mbox")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith("mailto:"):
            raise ValueError("mbox must be a mailto: IRI")
        return value


class Verb(_Lenient):
    id: str = Field(min_length=1)


class Definition(_Lenient):
    type: str | None = None
    name: dict[str, str] | None = None


class StatementObject(_Lenient):
    object_type: str | None = Field(default=None, alias="objectType")
    id: str | None = None
    definition: Definition | None = None


class Result(_Lenient):
    completion: bool | None = None
    extensions: dict[str, Any] | None = None


class Context(_Lenient):
    context_activities: dict[str, Any] | None = Field(default=None, alias="contextActivities")


class Statement(_Lenient):
    id: str | None = None
    actor: Actor
    verb: Verb
    object: StatementObject
    result: Result | None = None
    context: Context | None = None
    timestamp: str | None = None
    stored: str | None = None
    version: str | None = None

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(SUPPORTED_VERSIONS):
            raise ValueError(f"xAPI version {value} is not supported (1.0.x and 2.0.x are)")
        return value


_STATEMENTS = TypeAdapter(list[Statement])


class XapiFormat(SourceFormat):
    can_void = True  # voiding statements
    format_name: ClassVar[str] = "xapi"
    options_model: ClassVar[type[FormatOptions]] = XapiOptions
    endpoints: ClassVar[frozenset[str]] = frozenset({"webhook", "xapi"})
    options: XapiOptions

    def __init__(self, settings: SourceSettings, *, offline: bool = False) -> None:
        super().__init__(settings, offline=offline)
        self._standard_webhooks = (
            auth.StandardWebhooks(self.secret, self.name)
            if not offline and self.options.auth == "standardWebhooks"
            else None
        )

    def verify(self, delivery: Delivery) -> None:
        if self._standard_webhooks is not None:
            self._standard_webhooks.verify(delivery)
        elif self.options.auth == "bearer":
            auth.verify_bearer(delivery, self.secret)
        else:
            auth.verify_basic(delivery, self.secret)

    def parse(self, delivery: Delivery) -> ParseResult:
        version = delivery.header("x-experience-api-version")
        if delivery.endpoint == "xapi":
            _check_version_header(version)
        document = load_json(delivery.body)
        raw = _statement_list(document)
        _validate_as_an_lrs(document, raw, version2=delivery.endpoint != "xapi" or version == "2.0.0")
        statements = _validate_statements(document, raw)
        translated = [self._translate(s, r, delivery) for s, r in zip(statements, raw, strict=True)]
        voids = [item for item in translated if isinstance(item, Voiding)]
        events, ignored = split([item for item in translated if not isinstance(item, Voiding)])
        ids = [s.id or derived_event_id(self.name, r) for s, r in zip(statements, raw, strict=True)]
        return ParseResult(events=events, ignored=ignored, item_ids=ids, voids=voids)

    def accepted(self, result: ParseResult, endpoint: str = "webhook") -> Accepted:
        if endpoint != "xapi":
            return super().accepted(result, endpoint)
        # As an LRS answers a POST of statements: 200 with the ids of all of them, in order.
        return Accepted(200, result.item_ids, {"X-Experience-API-Version": ANSWER_VERSION})

    def _translate(
        self, statement: Statement, raw: Any, delivery: Delivery
    ) -> CanonicalEvent | Ignored | Voiding:
        statement_id = statement.id or derived_event_id(self.name, raw)
        if statement.verb.id == VOIDED:
            target = statement.object.id if statement.object.object_type == "StatementRef" else None
            if not target:
                return Ignored(
                    "invalidVoiding", statement_id, "a voiding statement must target a StatementRef"
                )
            return Voiding(source=self.name, voided_event_id=target, voiding_event_id=statement_id)
        verb = _verb_word(statement.verb.id)
        if verb not in COMPLETING | NEVER_COMPLETING | IN_PROGRESS:
            detail = f"verb {statement.verb.id} says nothing about course progress"
            return Ignored("verbNotProgress", statement_id, detail)
        learner = _learner(statement.actor)
        if isinstance(learner, str):
            return Ignored("actorNotResolvable", statement_id, learner)
        course = _course(statement)
        if isinstance(course, str):
            return Ignored("notCourseLevel", statement_id, course)
        activity, course_level = course
        status, percentage = _status(statement, verb, course_level)
        occurred = _when(statement, delivery.received_at)
        return build_event(
            self.name,
            event_id=statement_id,
            occurred_at=occurred,
            learner=learner,
            course_id=self._course_id(activity.id or ""),
            title=_name(activity.definition),
            status=status,
            percentage=percentage,
            started_at=occurred if verb in STARTING else None,
        )

    def _course_id(self, iri: str) -> str:
        if self.options.course_id == "lastSegment":
            return iri.rstrip("/").rsplit("/", 1)[-1]
        return iri


#: The X-Experience-API-Version values this LRS implements, in the exact forms the specs give: 1.0.3
#: (Communication 3.3) says "1.0" is to be read as "1.0.0"; 2.0 names "2.0.0". A prefix test would let
#: "1.0garbage" or "2.0-beta" through, versions nothing here implements.
HEADER_VERSIONS = frozenset({"1.0", "1.0.0", "1.0.1", "1.0.2", "1.0.3", "2.0.0"})


def _check_version_header(value: str | None) -> None:
    if value is None:
        raise InvalidPayload("The X-Experience-API-Version header is required.")
    if value not in HEADER_VERSIONS:
        raise InvalidPayload(
            "X-Experience-API-Version is not a version this LRS implements (1.0.0 to 1.0.3, 2.0.0)."
        )


def _statement_pointer(document: Any, index: int) -> str:
    """Where statement `index` is in the body as sent: `/statements/i` in a forwarding envelope, `/i`
    in an array, the root for a single statement. Problems point into what the sender sent, not into
    the statement list built from it."""
    if isinstance(document, dict) and isinstance(document.get("statements"), list):
        return f"/statements/{index}"
    return f"/{index}" if isinstance(document, list) else ""


def _validate_statements(document: Any, statements: list[Any]) -> list[Statement]:
    """The statements as the model, or InvalidPayload whose pointers are into the body as sent (the
    model's own locations start with the index in the statement list)."""
    try:
        return _STATEMENTS.validate_python(statements)
    except ValidationError as exc:
        problems = []
        for problem in problems_from_validation(exc):
            index, _, rest = problem.pointer.removeprefix("/").partition("/")
            if not index.isdigit():  # not about one statement: left as it is
                problems.append(problem)
                continue
            pointer = _statement_pointer(document, int(index)) + (f"/{rest}" if rest else "")
            problems.append(FieldProblem(pointer or "/", problem.detail))
        raise InvalidPayload("Not valid xAPI statements; see errors.", problems[:MAX_PROBLEMS]) from None


def _validate_as_an_lrs(document: Any, statements: list[Any], version2: bool) -> None:
    """The whole batch is refused (400) when any statement is not valid xAPI, as an LRS refuses it.
    On the webhook route (no version header) 2.0's additions are allowed too."""
    problems = []
    for index, statement in enumerate(statements):
        where = _statement_pointer(document, index)
        problems += [
            FieldProblem((where + (p.pointer if p.pointer != "/" else "")) or "/", p.detail)
            for p in statement_problems(statement, version2)
        ]
    if problems:
        count = len(statements)
        raise InvalidPayload(
            f"{'One statement is' if count == 1 else 'Statements are'} not valid xAPI; nothing was accepted. "
            "See errors.",
            problems[:MAX_PROBLEMS],
        )


def _statement_list(document: Any) -> list[Any]:
    if isinstance(document, dict) and isinstance(document.get("statements"), list):
        items: list[Any] = document["statements"]
    elif isinstance(document, list):
        items = document
    elif isinstance(document, dict):
        items = [document]
    else:
        raise InvalidPayload("The body must be a statement, an array of statements or {statements: [...]}.")
    if not items:
        raise InvalidPayload("The body holds no statement.")
    if len(items) > MAX_STATEMENTS:
        raise InvalidPayload(
            f"A delivery holds at most {MAX_STATEMENTS} statements; this one has {len(items)}."
        )
    return items


def _learner(actor: Actor) -> dict[str, Any] | str:
    if actor.object_type == "Group":
        return "the actor is a Group, not one learner"
    if actor.mbox:
        return {"email": actor.mbox[len("mailto:") :]}
    if actor.account is not None:
        return {"account": {"homePage": actor.account.home_page, "name": actor.account.name}}
    if actor.mbox_sha1sum or actor.openid:
        return "the actor is identified by mbox_sha1sum or openid, which cannot be resolved to a user"
    return "the actor has no identifier"


def _is_course_type(activity_type: str | None) -> bool:
    return bool(activity_type) and str(activity_type).rstrip("/").lower().endswith("/course")


def _parents(statement: Statement) -> list[StatementObject]:
    activities = (statement.context.context_activities if statement.context else None) or {}
    parent = activities.get("parent") or []
    items = parent if isinstance(parent, list) else [parent]
    parents = []
    for item in items:
        try:
            parents.append(StatementObject.model_validate(item))
        except ValidationError:  # not an activity (the LRS validation refuses it before this)
            continue
    return parents


def _course(statement: Statement) -> tuple[StatementObject, bool] | str:
    """The course the statement is about, and whether the statement is about the course itself."""
    obj = statement.object
    if obj.object_type not in (None, "Activity") or not obj.id:
        return f"the object is a {obj.object_type}, not an activity"
    activity_type = obj.definition.type if obj.definition else None
    if _is_course_type(activity_type):
        return obj, True
    course_parent = next(
        (p for p in _parents(statement) if p.definition and _is_course_type(p.definition.type)), None
    )
    if course_parent is not None:
        return course_parent, False
    if activity_type is None:
        return obj, True
    return f"the object is a {activity_type} with no course parent in contextActivities"


def _verb_word(verb_id: str) -> str:
    return verb_id.rstrip("/").rsplit("/", 1)[-1].lower()


def _status(statement: Statement, verb: str, course_level: bool) -> tuple[CourseStatus, int | None]:
    """Completion only from a course-level signal; failing never completes."""
    if verb in NEVER_COMPLETING:
        return CourseStatus.IN_PROGRESS, None
    completion = statement.result is not None and statement.result.completion is True
    if verb in COMPLETING or (completion and verb in IN_PROGRESS):
        return (CourseStatus.COMPLETED, 100) if course_level else (CourseStatus.IN_PROGRESS, None)
    percentage = _progress(statement) if course_level and verb == "progressed" else None
    return CourseStatus.IN_PROGRESS, percentage


def _progress(statement: Statement) -> int | None:
    extensions = (statement.result.extensions if statement.result else None) or {}
    value = extensions.get(CMI5_PROGRESS)
    try:
        return optional_percentage(value)
    except ValueError:
        return None


def _when(statement: Statement, received_at: datetime) -> datetime:
    for value in (statement.timestamp, statement.stored):
        if value:
            try:
                return parse_timestamp(value)
            except ValueError:
                continue
    return received_at


def _name(definition: Definition | None) -> str | None:
    names = (definition.name if definition else None) or {}
    return names.get("en-US") or names.get("en") or next(iter(names.values()), None)
