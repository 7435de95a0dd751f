"""RFC 9457 problem details: every refusal says what is wrong in a shape clients can parse."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.sources.exceptions import FieldProblem

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_BASE = "urn:viva-learning-bridge:problem:"


@dataclass(frozen=True)
class Problem:
    status: int
    slug: str  # the last part of the problem type URI, documented in docs/connect/index.md ("Answers")
    title: str
    detail: str
    errors: list[FieldProblem] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    #: RFC 9457 extension members (e.g. which events were queued before storage failed).
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return _TYPE_BASE + self.slug

    def to_json(self) -> dict[str, Any]:
        # No `instance`: request URLs may carry a path token, and problem bodies end up in logs.
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in self.errors]
        return {**body, **self.extensions}


def invalid_body(
    detail: str, errors: list[FieldProblem], status: int = 400, slug: str = "invalid-body"
) -> Problem:
    title = "Unsupported version" if status == 422 else "The body is not valid"
    return Problem(status, slug, title, detail, errors)


def assignments_disabled(event_ids: list[str]) -> Problem:
    """An event carries an assignment and this bridge does not write assignments (its identity lacks
    LearningAssignedCourse.ReadWrite.All): the whole delivery is refused, nothing is queued. Writing
    the progress alone would put a self-initiated record where the sender meant "Assigned to you",
    and a withdrawal could not be honoured; refused, the sender sees it and nothing accepted is lost."""
    errors = [FieldProblem("/", f"{name}: carries an assignment") for name in event_ids]
    return Problem(
        422,
        "assignments-disabled",
        "Assignments are not enabled",
        "This bridge does not write assigned courses (learningAssignment): deploy it with "
        "enableAssignments (BRIDGE_ASSIGNMENTS_ENABLED=true), or send the events without `assignment`.",
        errors,
    )


def authentication_failed(detail: str) -> Problem:
    return Problem(401, "authentication-failed", "Authentication failed", detail)


def unknown_source(source: str, endpoint: str = "webhook") -> Problem:
    detail = f"No source named {source!r} is configured"
    if endpoint == "xapi":
        detail += " with the xapi format"
    return Problem(404, "unknown-source", "Unknown source", detail + ".")


def body_too_large(size: int, limit: int) -> Problem:
    return Problem(
        413,
        "body-too-large",
        "Body too large",
        f"The body has {size} bytes; this bridge accepts at most {limit} bytes per delivery.",
    )


def unsupported_media_type(given: str | None, accepted: tuple[str, ...]) -> Problem:
    what = f"{given!r}" if given else "no Content-Type"
    return Problem(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        f"The body was sent with {what}; send {' or '.join(accepted)}.",
    )


def queue_unavailable(queued: list[str] | None = None, total: int = 0) -> Problem:
    """503: storage did not take the events. When some were queued before it failed (a queue has no
    transactions), the answer says which; a retry of the whole delivery is safe either way, because
    the queue side recognises an event it has already seen by its id and applies it once."""
    if not queued:
        detail = "The events could not be queued; nothing was accepted. Retry the delivery."
        return Problem(503, "queue-unavailable", "Temporarily unavailable", detail, headers=_RETRY)
    detail = (
        f"Storage failed part way: {len(queued)} of {total} items were queued (listed in `queued`), "
        "the others were not. Retry the whole delivery: items already queued are recognised by their "
        "id and applied once."
    )
    return Problem(
        503,
        "queue-unavailable",
        "Temporarily unavailable",
        detail,
        headers=_RETRY,
        extensions={"queued": queued},
    )


def source_not_configured(setting: str) -> Problem:
    """A configured source set aside at start-up (missing secret, invalid options): retry later."""
    return Problem(
        503,
        "source-not-configured",
        "Source not configured",
        f"This source cannot take deliveries until the app setting {setting} is fixed; nothing was "
        "accepted. Retry the delivery later.",
        headers={"Retry-After": "300"},
    )


def message_too_large(errors: list[FieldProblem]) -> Problem:
    return Problem(
        400,
        "invalid-body",
        "The body is not valid",
        "An item would not fit in a queue message (64 KiB); nothing was queued.",
        errors,
    )


_RETRY = {"Retry-After": "30"}
