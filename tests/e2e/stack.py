"""The end-to-end tests' stack: the project's LocalStack with the test secret, the test seed, and one
source of every format."""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.localstack.stack import PROVIDER_ID, LocalStack, wait_for
from tests.builders import TEST_SECRET

# A second generic source's Standard Webhooks secret (random test bytes, protects nothing).
PARTNER_SECRET = "whsec_cGFydG5lci10ZXN0LW9ubHktc2VjcmV0LWJ5dGVz"
#: The end-to-end stack's creation lease: short, so a crash mid-create can be waited out in a test.
CLAIM_LEASE_SECONDS = 4

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "sandbox-seed.json"
CANVAS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _canvas_jwks() -> dict[str, Any]:
    import json

    import jwt

    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(CANVAS_KEY.public_key()))
    return {"keys": [{**jwk, "kid": "canvas-e2e", "alg": "RS256"}]}


SOURCES: dict[str, tuple[dict[str, Any], str | None]] = {
    "lrs": (
        {"format": "xapi", "courseId": "lastSegment", "accountAttribute": "employeeId"},
        "lrs-key:lrs-secret",
    ),
    "sensor": (
        {"format": "caliper", "courseId": "lastSegment", "accountAttribute": "employeeId"},
        "sensor-token sensor-token-next",  # mid-rotation: the old token and the new one
    ),
    "thinkific": ({"format": "thinkific"}, "thinkific-api-key"),
    "canvas": ({"format": "canvas", "jwks": _canvas_jwks()}, None),
    "canvas-assigning": (  # Canvas enrolments as assignments, learners by Canvas id
        {
            "format": "canvas",
            "auth": "token",
            "assignments": True,
            "learner": "account",
            "accountAttribute": "extension_canvas_userId",
        },
        "canvas-path-token",
    ),
    "teachable": ({"format": "teachable"}, "teachable-path-token"),
    "docebo": ({"format": "docebo", "accountAttribute": "extension_docebo_userId"}, "docebo-token"),
    "docebo-assigning": (  # a Docebo platform whose enrolments are assignments, in Paris time
        {
            "format": "docebo",
            "accountAttribute": "extension_docebo_userId",
            "assignments": True,
            "timeZone": "Europe/Paris",
        },
        "docebo-token",
    ),
    "360learning": ({"format": "360learning", "accountAttribute": "extension_360_userId"}, TEST_SECRET),
    "360learning-assigning": (  # paths are assigned: each status states the assignment
        {"format": "360learning", "accountAttribute": "extension_360_userId", "assignments": True},
        TEST_SECRET,
    ),
    "learnworlds": ({"format": "learnworlds"}, "lw-shared-signature"),
    "partner": ({"format": "generic"}, PARTNER_SECRET),
    "audit": ({"format": "generic"}, PARTNER_SECRET),  # reconcile's own records (--source audit)
    "registering": (
        {"format": "generic", "registerContent": True, "contentLanguage": "en-gb"},
        PARTNER_SECRET,
    ),
    # An HR system assigns courses; the LMS reports progress on them (issue 18, progressFrom).
    "hr": ({"format": "generic", "progressFrom": ["lms-progress"]}, PARTNER_SECRET),
    "lms-progress": ({"format": "generic"}, PARTNER_SECRET),
}


class Stack(LocalStack):
    def __init__(self, workdir: Path) -> None:
        super().__init__(
            workdir,
            TEST_SECRET,
            SEED,
            more_sources=SOURCES,
            more_settings={
                "BRIDGE_CLAIM_LEASE_SECONDS": str(CLAIM_LEASE_SECONDS),
                "BRIDGE_ASSIGNMENTS_ENABLED": "true",
            },
        )


ROOT = Path(__file__).resolve().parents[2]


def cli(stack: LocalStack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m shared.cli` against the stack's settings, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "--settings", str(stack.settings_file), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def create_user(stack: LocalStack, email: str, display_name: str) -> str:
    """A new Entra user in the sandbox, created with what "Create user" requires; its object id."""
    user = {
        "accountEnabled": True,
        "displayName": display_name,
        "mailNickname": email.split("@", 1)[0],
        "userPrincipalName": email,
        "passwordProfile": {"password": f"Pw-{uuid.uuid4()}"},
        "mail": email,
    }
    created = httpx.post(f"{stack.sandbox}/v1.0/users", json=user, timeout=10)
    created.raise_for_status()
    return str(created.json()["id"])


__all__ = [
    "CANVAS_KEY",
    "CLAIM_LEASE_SECONDS",
    "PARTNER_SECRET",
    "PROVIDER_ID",
    "SOURCES",
    "Stack",
    "cli",
    "create_user",
    "wait_for",
]
