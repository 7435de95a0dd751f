"""Small builders for test inputs: a valid generic event, signed webhook headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from shared.config.settings import SourceSettings
from shared.events.model import CanonicalEvent
from shared.sources.base import Delivery, SourceFormat
from shared.sources.formats import generic
from shared.sources.registry import build_source

# A throwaway Standard Webhooks secret for tests only (random bytes, protects nothing).
TEST_SECRET = "whsec_dGVzdC1vbmx5LXNlY3JldC1mb3ItdGhlLWJyaWRnZQ=="
USER_ID = "4a1f3c2e-8b7d-4e6a-9f05-1c2d3e4f5a6b"


def event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventId": "evt-1",
        "occurredAt": "2026-11-20T14:03:00Z",
        "learner": {"email": "ada.lovelace@contoso.example"},
        "course": {"externalId": "course-101", "title": "Analytical Engines"},
        "status": "inProgress",
        "completionPercentage": 40,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def canonical(**overrides: Any) -> CanonicalEvent:
    """A generic-source event as the queue side receives it, with `event()`'s fields overridden."""
    return CanonicalEvent.model_validate(event(source="generic", **overrides))


def signed_headers(
    body: bytes, secret: str = TEST_SECRET, when: datetime | None = None, msg_id: str = "msg_test"
) -> dict[str, str]:
    return generic.signed_headers(body, secret, msg_id, when or datetime.now(UTC))


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def make_source(
    format_name: str, secret: str | None = None, name: str | None = None, **options: Any
) -> SourceFormat:
    settings = SourceSettings(
        name=name or format_name,
        format=format_name,
        options=options,
        secret=SecretStr(secret) if secret is not None else None,
    )
    return build_source(settings)


def delivery(
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    source: str = "src",
    endpoint: str = "webhook",
    path_token: str | None = None,
) -> Delivery:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return Delivery(source, body, lowered, datetime.now(UTC), path_token, endpoint)
