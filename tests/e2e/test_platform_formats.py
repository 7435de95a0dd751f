"""Every platform format, end to end: the platform's own body and authentication in, the course
activity in the Graph sandbox out (and the platform's own answer back)."""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import jwt
import pytest

from shared.config.settings import SourceSettings
from shared.sources.base import Delivery
from shared.sources.registry import build_source
from tests.builders import FIXTURES, signed_headers
from tests.e2e.stack import CANVAS_KEY, SOURCES, Stack, wait_for


@dataclass(frozen=True)
class Case:
    source: str
    fixture: str
    sign: Callable[[bytes], tuple[bytes, dict[str, str], str]]  # body -> (body, headers, path)
    statuses: tuple[str, ...]  # expected Graph status of each event's course activity
    answer: int = 202


def _basic(body: bytes) -> tuple[bytes, dict[str, str], str]:
    token = base64.b64encode(b"lrs-key:lrs-secret").decode()
    headers = {
        "content-type": "application/json",
        "authorization": f"Basic {token}",
        "x-experience-api-version": "1.0.3",
    }
    return body, headers, "xapi/lrs/statements"


def _bearer(body: bytes) -> tuple[bytes, dict[str, str], str]:
    return body, {"content-type": "application/json", "authorization": "Bearer sensor-token"}, ""


def _thinkific(body: bytes) -> tuple[bytes, dict[str, str], str]:
    signature = hmac.new(b"thinkific-api-key", body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/json", "x-thinkific-hmac-sha256": signature}, ""


def _canvas(body: bytes) -> tuple[bytes, dict[str, str], str]:
    claims = {**json.loads(body), "exp": int(datetime.now(UTC).timestamp()) + 300}
    token = jwt.encode(claims, CANVAS_KEY, algorithm="RS256", headers={"kid": "canvas-e2e"})
    return token.encode(), {"content-type": "application/jwt"}, ""


def _path_token(token: str) -> Callable[[bytes], tuple[bytes, dict[str, str], str]]:
    return lambda body: (body, {"content-type": "application/json"}, f"/{token}")


def _standard_webhooks(body: bytes) -> tuple[bytes, dict[str, str], str]:
    return body, signed_headers(body, msg_id=f"msg_e2e_{hashlib.sha1(body).hexdigest()[:8]}"), ""  # noqa: S324


def _learnworlds(body: bytes) -> tuple[bytes, dict[str, str], str]:
    return (
        body,
        {"content-type": "application/json", "learnworlds-webhook-signature": "lw-shared-signature"},
        "",
    )


CASES = [
    Case("lrs", "xapi/cmi5-course-satisfied.json", _basic, ("completed",), answer=200),
    Case("sensor", "caliper/envelope-tooluse-progress.json", _bearer, ("inProgress",), answer=200),
    Case("thinkific", "thinkific/enrollment-completed.json", _thinkific, ("completed",)),
    Case("canvas", "canvas/course-progress.json", _canvas, ("inProgress",)),
    Case(
        "teachable",
        "teachable/lecture-progress.json",
        _path_token("teachable-path-token"),
        ("inProgress",),
        200,
    ),
    Case("docebo", "docebo/enrollment-completed-batch.json", _path_token("docebo-token"), ("completed", "")),
    Case("360learning", "360learning/course-attempt-closed.json", _standard_webhooks, ("completed",)),
    Case("learnworlds", "learnworlds/course-completed.json", _learnworlds, ("completed",)),
]


def expected_event_ids(case: Case, body: bytes, headers: dict[str, str]) -> list[str]:
    definition, _ = SOURCES[case.source]
    settings = SourceSettings(
        name=case.source,
        format=definition["format"],
        options={k: v for k, v in definition.items() if k != "format"},
    )
    parser = build_source(settings, offline=True)
    delivery = Delivery(case.source, body, headers, datetime.now(UTC))
    return [event.event_id for event in parser.read(delivery).events]


@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
def test_the_platforms_own_delivery_becomes_a_course_activity(stack: Stack, case: Case) -> None:
    raw = (FIXTURES / case.fixture).read_bytes()
    body, headers, path = case.sign(raw)
    response = stack.post(body, headers, source=case.source, path=path)
    assert response.status_code == case.answer, response.text
    event_ids = expected_event_ids(case, raw if case.source == "canvas" else body, headers)
    assert len(event_ids) == len(case.statuses)
    for event_id, status in zip(event_ids, case.statuses, strict=True):
        if not status:  # a learner the tenant does not have: dead-lettered, never written
            continue
        wait_for(
            partial(has_status, stack, case.source, event_id, status), what=f"{case.source}'s course activity"
        )


def has_status(stack: Stack, source: str, event_id: str, status: str) -> bool:
    return (stack.activity_of(source, event_id) or {}).get("status") == status


def test_the_lrs_endpoint_answers_like_an_lrs(stack: Stack) -> None:
    body, headers, path = _basic((FIXTURES / "xapi/lrs-forwarding-envelope.json").read_bytes())
    response = stack.post(body, headers, path=path)
    assert response.status_code == 200
    assert response.headers["x-experience-api-version"] == "1.0.3"
    assert len(response.json()) == 3


@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
def test_a_delivery_without_the_platforms_credentials_is_401(stack: Stack, case: Case) -> None:
    raw = (FIXTURES / case.fixture).read_bytes()
    body, headers, path = case.sign(raw)
    forged = {k: v for k, v in headers.items() if k == "content-type"}
    if path.startswith("xapi/"):
        forged["x-experience-api-version"] = "1.0.3"
    wrong_path = "/wrong-token" if path.startswith("/") else path
    response = stack.post(
        body if case.source != "canvas" else raw, forged, source=case.source, path=wrong_path
    )
    if case.source == "canvas":  # an unsigned JSON body where a signed JWT is expected
        forged["content-type"] = "application/json"
        response = stack.post(raw, forged, source=case.source)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
