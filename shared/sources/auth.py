"""How platforms authenticate their deliveries, one small verifier per scheme.

Every comparison is constant-time (hmac.compare_digest), every check runs over the raw body before it
is parsed, and no message says more than which check failed: never the expected value.

Rotation: a source's secret setting may hold two secrets, the old and the new, separated by one space
(`old new`); every scheme accepts a delivery made with either. No scheme here uses secrets with spaces
(Standard Webhooks secrets are base64, tokens and keys are generated), so one value never splits by
accident. Header values arrive as text that may hold any code point (a server decodes the bytes it
got as Latin-1 or with surrogate escapes): they are compared as the bytes they stand for and never
raise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.sources.base import Delivery
from shared.sources.exceptions import AuthenticationFailed, SourceConfigurationError

#: Between the old and the new secret in a secret setting during a rotation.
ROTATION_SEPARATOR = " "
#: Standard Webhooks' tolerance between the sender's and the bridge's clocks (fixed by the spec).
TIMESTAMP_TOLERANCE_SECONDS = 300


def secrets(value: str) -> tuple[str, ...]:
    """The one or two secrets a secret setting holds (see the module docstring)."""
    parts = tuple(part for part in value.strip().split(ROTATION_SEPARATOR) if part)
    return parts or (value,)


def _bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    # Header values may carry surrogate escapes or non-ASCII code points; both become bytes here.
    return value.encode("utf-8", "surrogatepass")


def equal(given: str | bytes, expected: str | bytes) -> bool:
    return hmac.compare_digest(_bytes(given), _bytes(expected))


def matches_any(given: str | bytes, expected: Sequence[str | bytes]) -> bool:
    """Constant-time against every candidate (no early exit that would tell which one matched)."""
    results = [equal(given, candidate) for candidate in expected]
    return any(results)


class StandardWebhooks:
    """Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature), HMAC-SHA256 of
    `id.timestamp.body`.

    Verified here rather than by the `standardwebhooks` library (which still signs in the tests, as
    an oracle): the library decodes the body as UTF-8 before it checks the signature, so an authentic
    body that is not UTF-8 would be refused as not authentic (401) instead of as an invalid body (400).
    """

    def __init__(self, secret: str, source: str) -> None:
        self._keys = [_standard_webhooks_key(part, source) for part in secrets(secret)]

    def verify(self, delivery: Delivery) -> None:
        msg_id = delivery.header("webhook-id")
        timestamp = delivery.header("webhook-timestamp")
        signatures = delivery.header("webhook-signature")
        if not (msg_id and timestamp and signatures):
            raise AuthenticationFailed("Standard Webhooks verification failed: missing required headers.")
        sent_at = _unix_seconds(timestamp)
        now = delivery.received_at.timestamp()
        if sent_at < now - TIMESTAMP_TOLERANCE_SECONDS:
            raise AuthenticationFailed("Standard Webhooks verification failed: message timestamp too old.")
        if sent_at > now + TIMESTAMP_TOLERANCE_SECONDS:
            raise AuthenticationFailed("Standard Webhooks verification failed: message timestamp too new.")
        signed = _bytes(msg_id) + b"." + _bytes(timestamp) + b"." + delivery.body
        expected = [base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in self._keys]
        given = [sig[3:] for sig in signatures.split(" ") if sig.startswith("v1,")]
        if not any(matches_any(sig, expected) for sig in given):
            raise AuthenticationFailed("Standard Webhooks verification failed: no matching signature found.")


def _standard_webhooks_key(secret: str, source: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    except (binascii.Error, ValueError):
        key = b""
    if not key:  # the value must not be echoed
        raise SourceConfigurationError(
            f"source {source!r}: the secret is not a Standard Webhooks secret "
            "(expected whsec_ followed by base64)."
        )
    return key


def _unix_seconds(value: str) -> float:
    if not value.isascii() or not value.strip().isdigit() or len(value) > 12:
        raise AuthenticationFailed("Standard Webhooks verification failed: invalid signature headers.")
    return float(value)


def verify_hmac_sha256_hex(delivery: Delivery, secret: str, header: str) -> None:
    """A hex HMAC-SHA256 of the raw body in one header (Thinkific's scheme)."""
    given = (delivery.header(header) or "").strip().lower()
    if not given:
        raise AuthenticationFailed(f"The {header} header is missing.")
    expected = [hmac.new(_bytes(key), delivery.body, hashlib.sha256).hexdigest() for key in secrets(secret)]
    if not matches_any(given, expected):
        raise AuthenticationFailed(f"The {header} signature does not match the body.")


def verify_bearer(delivery: Delivery, token: str) -> None:
    scheme, _, given = (delivery.header("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise AuthenticationFailed("An Authorization: Bearer token is required.")
    if not matches_any(given.strip(), secrets(token)):
        raise AuthenticationFailed("The bearer token is not valid.")


def verify_basic(delivery: Delivery, credentials: str) -> None:
    """HTTP Basic with `user:password` (how LRS clients authenticate)."""
    scheme, _, encoded = (delivery.header("authorization") or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise AuthenticationFailed("HTTP Basic authentication is required.")
    try:
        given = base64.b64decode(_bytes(encoded.strip()), validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("The Basic credentials are not valid base64.") from None
    if not matches_any(given, secrets(credentials)):
        raise AuthenticationFailed("The Basic credentials are not valid.")


class TokenOptions(BaseModel):
    """Where an unsigned platform puts the shared secret token: a header, or the URL's last segment."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    location: Literal["header", "path"] = "header"
    header: str = Field(default="x-webhook-token", min_length=1)


def verify_token(delivery: Delivery, token: str, options: TokenOptions) -> None:
    if options.location == "path":
        given, where = delivery.path_token, "the URL (/api/webhooks/{source}/{token})"
    else:
        given, where = delivery.header(options.header), f"the {options.header} header"
    if not given:
        raise AuthenticationFailed(f"The shared token is missing from {where}.")
    if not matches_any(given.strip(), secrets(token)):
        raise AuthenticationFailed(f"The shared token in {where} is not valid.")
