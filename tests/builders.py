"""Small builders for test inputs: a valid generic event, signed webhook headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.sources import generic

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


def signed_headers(
    body: bytes, secret: str = TEST_SECRET, when: datetime | None = None, msg_id: str = "msg_test"
) -> dict[str, str]:
    return generic.signed_headers(body, secret, msg_id, when or datetime.now(UTC))


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
