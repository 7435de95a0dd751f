"""Canvas Live Events: `course_progress` and `course_completed`.

A Live Events HTTP subscription can sign its payloads: the body is then a JWT signed with one of
Canvas's keys. The source verifies it against a JWKS given in its options (`jwks`: the keys, copied
in once; no key is fetched at run time). Without signing, the source authenticates with a secret token
in the URL path or a header (`auth: token`). `course_progress` gives a percentage from requirement
counts (`completed_at` set means the course is completed); `course_completed` completes it.

Assignments (`assignments: true`, see `AssigningOptions`): `enrollment_created` and `enrollment_updated`
(https://developerdocs.instructure.com/services/canvas/data-services/live-events/event-format/canvas/
file.data_service_canvas_enrollment; instructure/canvas-lms `doc/api/data_services/json/canvas/
event-types/enrollment_created.json`) of a `StudentEnrollment` state the assignment while its
`workflow_state` is `invited`, `active` or `creation_pending` (assignedAt: the enrollment's `created_at`),
and withdraw it when it is `deleted`, `inactive` or `rejected` (instructure/canvas-lms
`app/models/enrollment.rb`, `workflow do`: `state :invited` and `state :active` each have `event :reject,
:transitions_to => :rejected`, the learner declining the invitation or it being rejected; `state :rejected`
has `event :unreject, :transitions_to => :invited`, which assigns it again); a `completed` enrollment is one
Canvas concluded, not one the learner completed, so it is ignored. Canvas documents no due date, assigner or
notes for a course enrollment (the body has `course_id`, `user_id`, `type`, `workflow_state`, `created_at`,
`updated_at`, sections; the metadata's `user_id` is the request's user, not described as the enroller, and
an SIS import has none), so none is sent; Canvas's own assignments (`assignment_created`, with `due_at`) are
tasks inside a course for all its students, not a course assigned to a learner, and are not mapped. The body
names the learner only by Canvas id (`learner: account` with `accountAttribute`). Enrollment events carry
global ids where `course_progress` carries local ones; the Live Events metadata page says a global id is
shardId * 10000000000000 + localId, so the local id is taken from it, and an enrollment and the progress in
its course address one record.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.config.settings import SourceSettings
from shared.events.model import CanonicalEvent, CourseStatus
from shared.sources import auth
from shared.sources.auth import TokenOptions
from shared.sources.base import (
    Delivery,
    FormatOptions,
    Ignored,
    ParseResult,
    SourceFormat,
    check_nesting,
    load_json,
    validate_body,
)
from shared.sources.exceptions import AuthenticationFailed, InvalidPayload, SourceConfigurationError
from shared.sources.fields import derived_event_id, optional_timestamp, parse_timestamp, ratio_percentage
from shared.sources.mapping import AssigningOptions, Identifiers, as_dict, build_event, identifier, split

EVENTS = frozenset({"course_progress", "course_completed"})
ENROLLMENT_EVENTS = frozenset({"enrollment_created", "enrollment_updated"})
ENROLLED_STATES = frozenset({"invited", "active", "creation_pending"})
#: Ends the enrollment (app/models/enrollment.rb: destroy sets `deleted`, deactivate `inactive`, the
#: `reject` event of `invited` and `active` leads to `rejected`).
WITHDRAWN_STATES = frozenset({"deleted", "inactive", "rejected"})
#: A Canvas global id is shardId * 10^13 + localId (Live Events "Metadata" page, Event Data Identifiers).
SHARD_FACTOR = 10_000_000_000_000
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384"]
CLOCK_LEEWAY_SECONDS = 60
JWT_CLAIMS = frozenset({"exp", "iat", "nbf", "jti", "iss", "aud", "sub"})


class CanvasOptions(AssigningOptions):
    auth: Literal["jwt", "token"] = "jwt"
    jwks: dict[str, Any] | None = Field(default=None, description="Canvas's public keys, {keys: [...]}.")
    token: TokenOptions = Field(default_factory=lambda: TokenOptions(location="path"))
    course_id: Literal["id", "sisSourceId"] = "id"
    max_token_age_seconds: int | None = Field(
        default=None,
        gt=0,
        description="Refuse JWTs issued (iat) longer ago than this; `exp` is always required.",
    )

    @model_validator(mode="after")
    def _usable_keys(self) -> CanvasOptions:
        if self.jwks is not None:
            try:
                jwt.PyJWKSet.from_dict(self.jwks)
            except jwt.PyJWTError as exc:
                raise ValueError(f"jwks is not a usable key set: {exc}") from None
        return self


class Event(BaseModel):
    model_config = ConfigDict(extra="allow")

    metadata: dict[str, Any]
    body: dict[str, Any]


class CanvasFormat(SourceFormat):
    format_name: ClassVar[str] = "canvas"
    options_model: ClassVar[type[FormatOptions]] = CanvasOptions
    media_types: ClassVar[tuple[str, ...]] = ("application/json", "application/jwt", "text/plain")
    requires_secret: ClassVar[bool] = False  # only with auth: token (checked below)
    options: CanvasOptions

    def __init__(self, settings: SourceSettings, *, offline: bool = False) -> None:
        super().__init__(settings, offline=offline)
        if not offline and self.options.auth == "token" and settings.secret is None:
            raise SourceConfigurationError(f"source {self.name!r} (canvas) with auth token needs a secret.")
        if not offline and self.options.auth == "jwt" and not self.options.jwks:
            raise SourceConfigurationError(
                f"source {self.name!r} (canvas): auth jwt needs the jwks option (Canvas's public keys)."
            )
        jwks = self.options.jwks
        self._keys = jwt.PyJWKSet.from_dict(jwks).keys if self.options.auth == "jwt" and jwks else []

    def verify(self, delivery: Delivery) -> None:
        if self.options.auth == "token":
            auth.verify_token(delivery, self.secret, self.options.token)
        else:
            self._claims(delivery.body)

    def parse(self, delivery: Delivery) -> ParseResult:
        document = self._document(delivery.body)
        event = validate_body(Event, document, "a Canvas Live Event")
        # Live Events carry no event id: derive one from the event, without the JWT's own claims
        # (exp, iat), which change each time the same event is signed again.
        content = (
            {k: v for k, v in document.items() if k not in JWT_CLAIMS}
            if isinstance(document, dict)
            else document
        )
        event_id = derived_event_id(self.name, content)
        events, ignored = split([self._translate(event, event_id)])
        return ParseResult(events=events, ignored=ignored, item_ids=[event_id])

    def _document(self, body: bytes) -> Any:
        if self.options.auth == "jwt" and not self.offline:
            return self._claims(body)
        if self.offline and body.lstrip().startswith(b"ey"):  # translate: read a signed body unverified
            try:
                return jwt.decode(body.strip(), options={"verify_signature": False})
            except jwt.PyJWTError:
                raise InvalidPayload("The body is not a readable JWT.") from None
        return load_json(body)

    def _claims(self, body: bytes) -> dict[str, Any]:
        """The verified claims. Every configured key is tried (a key of another type, or another
        kid, is skipped, never fatal); a token without `exp`, expired, or older than
        `maxTokenAgeSeconds` (by `iat`) is refused: a captured body must not replay forever."""
        token = body.decode("ascii", errors="replace").strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except (jwt.PyJWTError, RecursionError, ValueError):
            raise AuthenticationFailed("The body is not a signed JWT.") from None
        required = ["exp", "iat"] if self.options.max_token_age_seconds is not None else ["exp"]
        for key in self._keys:
            if kid is not None and key.key_id not in (None, kid):
                continue
            try:
                jwt.api_jws.PyJWS().decode_complete(token, key=key, algorithms=ALGORITHMS)
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError, jwt.InvalidAlgorithmError):
                continue  # not this key: try the next one
            except (jwt.PyJWTError, ValueError, TypeError) as exc:
                raise AuthenticationFailed(f"The JWT is not acceptable: {type(exc).__name__}.") from None
            claims = self._verified_claims(token, key, required)
            self._check_age(claims)
            check_nesting(claims)
            return claims
        raise AuthenticationFailed("The JWT is not signed by any of the configured Canvas keys.")

    @staticmethod
    def _verified_claims(token: str, key: jwt.PyJWK, required: list[str]) -> dict[str, Any]:
        """The claims of a token whose signature `key` has just verified. The sender is authentic, so
        a payload that is not UTF-8 JSON of an object, or a `sub` or `jti` that is not a string, is a
        bad body (400), not a failed authentication (401): a retry with the same key and a good body
        succeeds. Expiry, `nbf`, `iat` and missing claims are still 401: they are about the token."""
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                options={"verify_aud": False, "require": required},
                leeway=CLOCK_LEEWAY_SECONDS,
            )
        except RecursionError:
            raise InvalidPayload("The JWT's claims nest too deeply.") from None
        except (InvalidSubjectError, InvalidJTIError) as exc:
            raise InvalidPayload(f"The JWT's claims are not valid: {type(exc).__name__}.") from None
        except (jwt.InvalidSignatureError, jwt.InvalidKeyError, jwt.InvalidAlgorithmError) as exc:
            raise AuthenticationFailed(f"The JWT is not acceptable: {type(exc).__name__}.") from None
        except jwt.DecodeError:
            raise InvalidPayload("The JWT's payload is not a UTF-8 JSON object.") from None
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:  # int(Infinity) overflows
            raise AuthenticationFailed(f"The JWT is not acceptable: {type(exc).__name__}.") from None

    def _check_age(self, claims: dict[str, Any]) -> None:
        limit = self.options.max_token_age_seconds
        issued = claims.get("iat")
        if limit is None or not isinstance(issued, int | float):
            return
        # Compared, not subtracted: `time.time() - iat` overflows for an int iat no float holds
        # (OverflowError, a 500); an int compares with a float exactly, whatever its size.
        if issued < time.time() - (limit + CLOCK_LEEWAY_SECONDS):
            raise AuthenticationFailed(f"The JWT was issued more than {limit} seconds ago.")

    def _translate(self, event: Event, event_id: str) -> CanonicalEvent | Ignored:
        name = event.metadata.get("event_name")
        if self.options.assignments and isinstance(name, str) and name in ENROLLMENT_EVENTS:
            return self._enrollment(event, event_id)
        if not isinstance(name, str) or name not in EVENTS:
            return Ignored("eventNotProgress", event_id, f"{name} says nothing about course progress")
        body = event.body
        course, user = as_dict(body.get("course")), as_dict(body.get("user"))
        progress = as_dict(body.get("progress"))
        completed_at = progress.get("completed_at")
        status = (
            CourseStatus.COMPLETED if name == "course_completed" or completed_at else CourseStatus.IN_PROGRESS
        )
        try:
            occurred = parse_timestamp(event.metadata.get("event_time"))
            completed = optional_timestamp(completed_at)
        except ValueError as exc:
            return Ignored("unmappable", event_id, str(exc))
        identifiers = Identifiers(
            home_page=f"https://{event.metadata.get('root_account_lti_guid') or 'canvas'}",
            email=user.get("email"),
            login=event.metadata.get("user_login"),
            platform_id=identifier(user.get("id")),
        )
        course_id = (
            course.get("sis_source_id") if self.options.course_id == "sisSourceId" else course.get("id")
        )
        return build_event(
            self.name,
            event_id=event_id,
            occurred_at=occurred,
            learner=identifiers.choose(self.options.learner),
            course_id=course_id,
            title=course.get("name"),
            status=status,
            percentage=_percentage(progress),
            completed_at=completed,
        )

    def _enrollment(self, event: Event, event_id: str) -> CanonicalEvent | Ignored:
        """An enrollment as the assignment it states (or withdraws), for a source that assigns."""
        body, metadata = event.body, event.metadata
        if body.get("type") != "StudentEnrollment":
            return Ignored("notAssignment", event_id, f"a {body.get('type')} is not a learner's enrollment")
        state, assigned_at = str(body.get("workflow_state")), body.get("created_at")
        if state not in ENROLLED_STATES | WITHDRAWN_STATES:
            return Ignored(
                "eventNotProgress", event_id, f"an enrollment {state} says nothing of the learner's progress"
            )
        try:
            occurred = parse_timestamp(metadata.get("event_time"))
            assignment = (
                self.options.assigned(assignedAt=optional_timestamp(assigned_at or None))
                if state in ENROLLED_STATES
                else self.options.withdrawn()
            )
        except ValueError as exc:
            return Ignored("unmappable", event_id, str(exc))
        identifiers = Identifiers(
            home_page=f"https://{metadata.get('root_account_lti_guid') or 'canvas'}",
            platform_id=_local_id(body.get("user_id")),
        )
        sis_course = (
            metadata.get("context_sis_source_id") if metadata.get("context_type") == "Course" else None
        )
        course_id = (
            sis_course if self.options.course_id == "sisSourceId" else _local_id(body.get("course_id"))
        )
        return build_event(
            self.name,
            event_id=event_id,
            occurred_at=occurred,
            learner=identifiers.choose(self.options.learner),
            course_id=course_id,
            status=CourseStatus.NOT_STARTED,
            assignment=assignment,
        )


def _local_id(value: Any) -> str | None:
    """A Canvas id as the local id `course_progress` uses: a global id less its shard."""
    text = identifier(value)
    if text is not None and text.isascii() and text.isdigit() and int(text) >= SHARD_FACTOR:
        return str(int(text) % SHARD_FACTOR)
    return text


def _percentage(progress: dict[str, Any]) -> int | None:
    done, total = progress.get("requirement_completed_count"), progress.get("requirement_count")
    if isinstance(done, int) and isinstance(total, int):
        return ratio_percentage(done, total)
    return None
