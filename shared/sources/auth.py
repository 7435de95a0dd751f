"""How platforms authenticate their deliveries, one small verifier per scheme.

Every comparison is constant-time (hmac.compare_digest), every check runs over the raw body before it
is parsed, and no message says more than which check failed: never the expected value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from standardwebhooks.webhooks import Webhook

from shared.sources.base import Delivery
from shared.sources.exceptions import AuthenticationFailed, SourceConfigurationError


def equal(given: str | bytes, expected: str | bytes) -> bool:
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


class StandardWebhooks:
    """Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature), via the spec's library."""

    def __init__(self, secret: str, source: str) -> None:
        try:
            self._webhook = Webhook(secret)
        except Exception:  # binascii.Error, EmptyWebhookSecretError: the value must not be echoed
            raise SourceConfigurationError(
                f"source {source!r}: the secret is not a Standard Webhooks secret "
                "(expected whsec_ followed by base64)."
            ) from None

    def verify(self, delivery: Delivery) -> None:
        headers = {k: v for k, v in delivery.headers.items() if k.startswith("webhook-")}
        try:
            self._webhook.verify(delivery.body, headers, json_parse=False)
        except Exception as exc:
            # The library raises WebhookVerificationError, but also ValueError for a malformed
            # signature header and UnicodeDecodeError for a non-UTF-8 body: all are "not authentic".
            raise AuthenticationFailed(_standard_webhooks_reason(exc)) from None


def _standard_webhooks_reason(exc: Exception) -> str:
    known = {
        "Missing required headers",
        "Message timestamp too old",
        "Message timestamp too new",
        "Invalid Signature Headers",
        "No matching signature found",
    }
    message = str(exc)
    if message in known:
        return f"Standard Webhooks verification failed: {message.lower()}."
    return "Standard Webhooks verification failed: malformed signature headers."


def verify_hmac_sha256_hex(delivery: Delivery, secret: str, header: str) -> None:
    """A hex HMAC-SHA256 of the raw body in one header (Thinkific's scheme)."""
    given = (delivery.header(header) or "").strip().lower()
    if not given:
        raise AuthenticationFailed(f"The {header} header is missing.")
    expected = hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    if not equal(given, expected):
        raise AuthenticationFailed(f"The {header} signature does not match the body.")


def verify_bearer(delivery: Delivery, token: str) -> None:
    scheme, _, given = (delivery.header("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise AuthenticationFailed("An Authorization: Bearer token is required.")
    if not equal(given.strip(), token):
        raise AuthenticationFailed("The bearer token is not valid.")


def verify_basic(delivery: Delivery, credentials: str) -> None:
    """HTTP Basic with `user:password` (how LRS clients authenticate)."""
    scheme, _, encoded = (delivery.header("authorization") or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise AuthenticationFailed("HTTP Basic authentication is required.")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("The Basic credentials are not valid base64.") from None
    if not equal(given, credentials.encode()):
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
    if not equal(given.strip(), token):
        raise AuthenticationFailed(f"The shared token in {where} is not valid.")
