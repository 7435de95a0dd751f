"""What can go wrong with one delivery, before anything is queued. Each maps to one HTTP answer."""

from __future__ import annotations

from dataclasses import dataclass


class SourceError(Exception):
    """Base class: a delivery the bridge refuses, with a message safe to show the sender."""


class UnknownSource(SourceError):
    """No source of that name is configured (404)."""


class AuthenticationFailed(SourceError):
    """The delivery is not from whom it claims (401). The message never says which part failed
    in a way that helps forging, and never contains a secret."""


class UnsupportedMediaType(SourceError):
    """The body is not in a media type the source's format reads (415)."""


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: a JSON Pointer (RFC 6901) into the body and what is wrong there."""

    pointer: str
    detail: str


class InvalidPayload(SourceError):
    """The body is authentic but not valid for the format (400); `problems` says where and why."""

    status = 400
    slug = "invalid-body"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class UnsupportedVersion(InvalidPayload):
    """A version of the format the bridge does not read (422, as Caliper endpoints answer)."""

    status = 422
    slug = "unsupported-version"


class SourceConfigurationError(Exception):
    """A source's settings do not suit its format (raised at start-up, never per request)."""
