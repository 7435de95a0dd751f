"""The one interface every source format implements: authenticate a delivery, parse its body.

A *format* is code (generic, xAPI, Caliper, a vendor's webhook); a *source* is a configured instance of
a format with a name, a secret and options. Adding a platform means adding one module with one
`SourceFormat` subclass and registering it in `shared.sources.registry`.
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from shared.config.settings import SourceSettings, secret_setting_name
from shared.events.model import CanonicalEvent, CourseStatus
from shared.events.queue import Voiding
from shared.sources.exceptions import (
    AuthenticationFailed,
    FieldProblem,
    InvalidPayload,
    SourceConfigurationError,
)

#: The most events one delivery of a batch format may hold (a bound on what one request can queue).
MAX_EVENTS_PER_DELIVERY = 500

M = TypeVar("M")
B = TypeVar("B", bound=BaseModel)


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery as the source sent it: raw bytes (signatures are over bytes) and headers."""

    source: str
    body: bytes
    headers: Mapping[str, str]  # keys lower-cased
    received_at: datetime
    path_token: str | None = None  # /api/webhooks/{source}/{token}, for platforms that cannot sign
    endpoint: str = "webhook"  # which route it came in on: "webhook", or "xapi" (LRS-style)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Ignored:
    """A valid item the bridge cannot use (e.g. an xAPI verb that says nothing about progress).

    Acknowledged, never rejected (a rejecting webhook gets retried or switched off), and reported.
    """

    reason: str  # a stable code (e.g. verbNotProgress), for counting
    reference: str | None = None  # the item's id in the delivery, when it has one
    detail: str = ""  # what the operator needs to know (never personal data)


@dataclass(frozen=True)
class ParseResult:
    events: list[CanonicalEvent] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    #: The id of every item in the delivery, in order (an LRS answers with them).
    item_ids: list[str] = field(default_factory=list)
    #: Events the source withdraws (xAPI voiding statements).
    voids: list[Voiding] = field(default_factory=list)


_ATTRIBUTE = r"^(employeeId|onPremisesSamAccountName|userPrincipalName|mail|extension_[A-Za-z0-9_]+)$"


class FormatOptions(BaseModel):
    """Base for a format's options (the source's JSON in BRIDGE_SOURCES, less `format`).

    `accountAttribute` says how a learner known only by a platform account (`account.name`) is found
    in Entra: the user attribute that holds that name (`employeeId`, an `extension_...` attribute).
    Without it such learners are dead-lettered as not resolvable: the bridge never guesses.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    account_attribute: str | None = Field(default=None, pattern=_ATTRIBUTE)
    #: The source's externalCourseActivityIds address records shared with other systems, so they are
    #: used verbatim instead of being namespaced by the source (the record's owner is still checked).
    shared_activity_ids: bool = False
    #: An event for a course Viva Learning does not know, carrying the course's title and URL, registers
    #: it (PATCH learningContents(externalId=...), with `contentLanguage`) instead of being parked.
    #: Needs LearningContent.ReadWrite.All (the Bicep parameter enableContentWrites).
    register_content: bool = False
    content_language: str = Field(default="en-us", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
    #: Other sources whose progress and completions update this source's records (issue 18: an HR
    #: system assigns, the LMS reports progress): their events without externalCourseActivityId are
    #: keyed by learner and course as if this source had sent them, so they update this source's
    #: assignment instead of making a second, self-initiated record. A source may be named by one
    #: source only, and a source that names others may not be named itself (shared.sources.registry).
    progress_from: tuple[str, ...] = ()


def progress_keys(options: Mapping[str, FormatOptions]) -> dict[str, str]:
    """For each source named in another's `progressFrom`, the source whose records its events update.
    A name left ambiguous (named by two sources, or naming others itself) or not configured is left
    out: its events key their own records (`progress_problems` sets the sources naming it aside)."""
    return {
        name: owners[0]
        for name, owners in _named_by(options).items()
        if len(owners) == 1 and name != owners[0] and name in options and not options[name].progress_from
    }


def _named_by(options: Mapping[str, FormatOptions]) -> dict[str, list[str]]:
    """Each source name some `progressFrom` lists, and the sources listing it."""
    named: dict[str, list[str]] = {}
    for owner, option in options.items():
        for name in option.progress_from:
            named.setdefault(name, []).append(owner)
    return named


def progress_problems(options: Mapping[str, FormatOptions]) -> dict[str, str]:
    """Each source whose `progressFrom` cannot be honoured, and why (it names itself, a source not
    configured, a source another source names too, or one that names sources itself)."""
    problems: dict[str, str] = {}
    named = _named_by(options)
    for owner, option in sorted(options.items()):
        for name in option.progress_from:
            if name == owner:
                why = "names the source itself"
            elif name not in options:
                why = f"names {name!r}, which is not a configured source"
            elif len(named[name]) > 1:
                why = f"names {name!r}, which {' and '.join(sorted(named[name]))} all name"
            elif options[name].progress_from:
                why = f"names {name!r}, which names sources of its own (progressFrom is one level deep)"
            else:
                continue
            problems[owner] = f"source {owner!r}: option progressFrom {why}."
            break
    return problems


@dataclass(frozen=True)
class Accepted:
    """The answer a format gives when a delivery is accepted (platforms expect their own shapes)."""

    status: int
    body: Any  # JSON-serialisable, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


class SourceFormat(ABC):
    """A configured source. Subclasses set `format_name` and implement the two steps."""

    format_name: ClassVar[str]
    #: Media types the format reads; anything else is 415. `+json` suffixes count as JSON.
    media_types: ClassVar[tuple[str, ...]] = ("application/json",)
    options_model: ClassVar[type[FormatOptions]] = FormatOptions
    #: The routes a format answers on; "xapi" is /api/xapi/{source}/statements.
    endpoints: ClassVar[frozenset[str]] = frozenset({"webhook"})
    #: Whether the source cannot work without a secret setting.
    requires_secret: ClassVar[bool] = True
    #: Whether the format can withdraw an event it sent (xAPI voiding): the queue side then takes the
    #: longer, voiding-safe path for the source's events.
    can_void: ClassVar[bool] = False

    def __init__(self, settings: SourceSettings, *, offline: bool = False) -> None:
        """`offline` builds a parser only (CLI `translate`): no secret needed, no authentication."""
        self.name = settings.name
        #: The source's `assignments` option is on but the deployment writes none (for_deployment).
        self.assignments_withheld = False
        self.offline = offline
        self._secret = settings.secret
        try:
            self.options = self.options_model.model_validate(dict(settings.options))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "options"
            raise SourceConfigurationError(
                f"source {self.name!r} ({self.format_name}): option {where}: {first['msg']}"
            ) from None
        if self.requires_secret and settings.secret is None and not offline:
            raise SourceConfigurationError(
                f"source {self.name!r} ({self.format_name}) needs a secret in the app setting "
                f"{secret_setting_name(self.name)}."
            )

    def for_deployment(self, *, assignments_enabled: bool) -> SourceFormat:
        """The source as a deployment uses it: a vendor source whose enrolments are assignments
        (`assignments` option) states them only when the deployment writes assignments too; otherwise
        it reads as with the option off (its progress and completions pass as self-initiated, its
        enrolments are ignored), a copy, this source untouched. The generic format's explicit
        `assignment` is the sender's own statement, not an option: it is refused while disabled."""
        if assignments_enabled or not getattr(self.options, "assignments", False):
            return self
        clone = copy.copy(self)
        clone.options = self.options.model_copy(update={"assignments": False})
        clone.assignments_withheld = True
        return clone

    @property
    def secret(self) -> str:
        if self._secret is None:
            raise SourceConfigurationError(f"source {self.name!r} has no secret")
        return self._secret.get_secret_value()

    def authenticate(self, delivery: Delivery) -> None:
        """Raise AuthenticationFailed unless the delivery is authentic. Runs before parsing."""
        if self.offline:
            raise AuthenticationFailed("This source was built offline (translate) and cannot authenticate.")
        self.verify(delivery)

    @abstractmethod
    def verify(self, delivery: Delivery) -> None:
        """The format's own authentication scheme, over the raw body and headers."""

    @abstractmethod
    def parse(self, delivery: Delivery) -> ParseResult:
        """Translate an authentic body into canonical events; raise InvalidPayload when it is not valid."""

    def read(self, delivery: Delivery) -> ParseResult:
        """`parse`, less the events that call for no Graph record (acknowledged as ignored).

        An event that says only "enrolled / not started" has nothing to write: a self-initiated record
        is inProgress or completed (the learningSelfInitiatedCourse resource page and "Update
        learningCourseActivity"), and writing notStarted would be refused or, worse, accepted. An event
        that carries an assignment (or its withdrawal) is kept: notStarted is valid on a
        learningAssignment, and a withdrawal changes the record whatever its status says.
        """
        result = self.parse(delivery)
        waiting = [e for e in result.events if _only_not_started(e)]
        if not waiting:
            return result
        ignored = [
            Ignored(
                "notStarted",
                e.event_id,
                "The event says only that the course has not been started (an enrolment); Viva "
                "Learning keeps self-initiated courses once they are in progress or completed."
                + (
                    " This source's enrolments are assignments, but this deployment writes none "
                    "(BRIDGE_ASSIGNMENTS_ENABLED is not true)."
                    if self.assignments_withheld
                    else ""
                ),
            )
            for e in waiting
        ]
        return replace(
            result,
            events=[e for e in result.events if not _only_not_started(e)],
            ignored=result.ignored + ignored,
        )

    def accepted(self, result: ParseResult, endpoint: str = "webhook") -> Accepted:
        """202 with the accepted event ids and what was ignored, unless the platform expects otherwise."""
        body: dict[str, Any] = {
            "accepted": len(result.events) + len(result.voids),
            "eventIds": [event.event_id for event in result.events]
            + [v.voiding_event_id for v in result.voids],
        }
        if result.ignored:
            body["ignored"] = [
                {"reference": i.reference, "reason": i.reason, "detail": i.detail} for i in result.ignored
            ]
        return Accepted(202, body)


#: How deep a body may nest. Real payloads nest under ten levels; a 100 kB `[[[...]]]` must not reach
#: the recursive parts (json, pydantic, json.dumps for derived ids) and end in a RecursionError.
MAX_DEPTH = 64


def load_json(body: bytes) -> Any:
    """Decode a JSON body, with the position of the first error (senders need it to fix their code).

    Strict RFC 8259 (UTF-8, no `NaN` or `Infinity`), and nesting deeper than MAX_DEPTH is refused:
    the parser gives up with a RecursionError near the interpreter's limit, and anything just under
    it would still exhaust the recursive steps after parsing (validation, canonical JSON for ids)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidPayload("The body is not UTF-8 encoded JSON.") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidPayload(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    except RecursionError:
        raise InvalidPayload(f"The body nests deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:  # NaN/Infinity, integers of more than 4300 digits
        raise InvalidPayload(f"The body is not valid JSON: {_short(exc)}") from None
    check_nesting(document)
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _short(exc: BaseException) -> str:
    message = str(exc).split(";", 1)[0]
    return message + "." if len(message) < 120 else type(exc).__name__


def check_nesting(document: Any, limit: int = MAX_DEPTH) -> None:
    """InvalidPayload when arrays and objects nest deeper than `limit`, or a string holds a lone
    surrogate (`"\\ud800"` is valid JSON syntax but not Unicode text: it could never be queued).
    Walked without recursion."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if isinstance(value, dict):
            for key in value:
                _check_text(key)
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            raise InvalidPayload(f"The body nests deeper than {limit} levels.")
        stack.extend((child, depth + 1) for child in children)


def _check_text(value: str) -> None:
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPayload(
            "The body holds a string with an unpaired surrogate (\\ud800-\\udfff)."
        ) from None


@overload
def validate_body(schema: type[B], document: Any, what: str) -> B: ...
@overload
def validate_body(schema: TypeAdapter[M], document: Any, what: str) -> M: ...
def validate_body(schema: type[BaseModel] | TypeAdapter[Any], document: Any, what: str) -> Any:
    """The body as the format's model, or InvalidPayload (400) naming each bad field and why."""
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_python(document)
        return schema.model_validate(document)
    except ValidationError as exc:
        raise InvalidPayload(f"Not {what}; see errors.", problems_from_validation(exc)) from None


def problems_from_validation(exc: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """Pydantic errors as JSON Pointers into the body, with pydantic's own explanation."""
    problems = []
    for error in exc.errors(include_url=False):
        parts = [str(p).replace("~", "~0").replace("/", "~1") for p in error["loc"]]
        pointer = prefix + "".join(f"/{p}" for p in parts)
        message = error["msg"].removeprefix("Value error, ")
        problems.append(FieldProblem(pointer=pointer or "/", detail=message))
    return problems


def _only_not_started(event: CanonicalEvent) -> bool:
    return event.status is CourseStatus.NOT_STARTED and event.assignment is None
