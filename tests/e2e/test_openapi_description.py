"""The OpenAPI description (openapi/bridge.openapi.json) is true of the bridge on the dev host: every
answer to requests made from it is one it declares (status, content type, headers, body and problem
type), and every answer it declares is reached (here, or by tests/unit/test_openapi_description.py for
the 429, 500 and 503s a healthy stack cannot give on demand).

Two parts: each declared answer reached by a request written for it, then requests generated from the
description by schemathesis (a bounded number per operation), with the sources' real credentials on
some of them so that generation gets past authentication into the formats' parsers. On its own stack:
generated events that are accepted go through the queue into dead letters, which the other end-to-end
tests, sharing the session stack, must not see."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import api_description as api
from tests.api_description import Answer, Key
from tests.builders import FIXTURES, TEST_SECRET, dumps, event
from tests.e2e.stack import CANVAS_KEY, PARTNER_SECRET, Stack

#: Generated requests per operation and mode: enough to cross every check of the webhook.
EXAMPLES_PER_OPERATION = int(os.environ.get("OPENAPI_EXAMPLES", "30"))
#: `make test` replays the same requests every time; a big run (OPENAPI_EXAMPLES set) draws new ones.
RANDOM = "OPENAPI_EXAMPLES" in os.environ
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("openapi"))
    try:
        yield stack.start()
    finally:
        stack.stop()


# ---- the sources' credentials (tests/e2e/stack.py) ---------------------------------------------------

STANDARD_WEBHOOKS = {"generic": TEST_SECRET, "360learning": TEST_SECRET, "partner": PARTNER_SECRET}
PATH_TOKENS = {"teachable": "teachable-path-token", "docebo": "docebo-token"}


def credentials(source: str, body: bytes) -> dict[str, str]:
    """The headers that authenticate `body` for `source` ({} for a path token or an unknown source)."""
    if source in STANDARD_WEBHOOKS:
        return standard_webhooks(body, STANDARD_WEBHOOKS[source])
    if source == "lrs":
        return {"authorization": "Basic " + base64.b64encode(b"lrs-key:lrs-secret").decode()}
    if source == "sensor":
        return {"authorization": "Bearer sensor-token"}
    if source == "thinkific":
        return {"x-thinkific-hmac-sha256": hmac.new(b"thinkific-api-key", body, hashlib.sha256).hexdigest()}
    if source == "learnworlds":
        return {"learnworlds-webhook-signature": "lw-shared-signature"}
    return {}


def standard_webhooks(body: bytes, secret: str) -> dict[str, str]:
    """Signed over the bytes as they are (the library's signer decodes them as UTF-8 first)."""
    message_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(datetime.now(UTC).timestamp()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(digest).decode()
    return {"webhook-id": message_id, "webhook-timestamp": timestamp, "webhook-signature": signature}


def canvas_jwt(claims: dict[str, Any]) -> bytes:
    expiry = int(datetime.now(UTC).timestamp()) + 300
    token = jwt.encode(
        {**claims, "exp": expiry}, CANVAS_KEY, algorithm="RS256", headers={"kid": "canvas-e2e"}
    )
    return token.encode()


# ---- sending ---------------------------------------------------------------------------------------


def request(
    stack: Stack,
    operation_id: str,
    source: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    segment: str = "t",
) -> httpx.Response:
    path, method, _ = api.operation(operation_id)
    path = path.replace("{source}", quote(source, safe="")).replace("{token}", quote(segment, safe=""))
    origin = stack.bridge.removesuffix("/api")
    return httpx.request(method.upper(), origin + path, content=body, headers=headers or {}, timeout=30)


def answer_of(response: httpx.Response) -> Answer:
    return Answer(response.status_code, dict(response.headers), response.content)


def send(
    stack: Stack,
    operation_id: str,
    source: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    segment: str = "t",
) -> Answer:
    return answer_of(request(stack, operation_id, source, body, headers, segment))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def json_headers(source: str, body: bytes, **more: str) -> dict[str, str]:
    return {"content-type": "application/json", **credentials(source, body), **more}


def generic_event() -> bytes:
    return dumps(event(eventId=f"evt-{uuid.uuid4()}"))


def xapi(body: bytes, **more: str) -> dict[str, str]:
    return json_headers("lrs", body, **{"x-experience-api-version": "1.0.3", **more})


def caliper_of_another_version() -> bytes:
    envelope = json.loads(fixture("caliper/envelope-tooluse-progress.json"))
    return json.dumps({**envelope, "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v9p9"}).encode()


def written_requests(stack: Stack) -> Iterator[tuple[str, Answer]]:
    """One request per declared answer that a healthy stack gives (the unit test has the others)."""
    too_large = b"[" + b" " * MIB + b"]"
    satisfied = fixture("xapi/cmi5-course-satisfied.json")
    for op in ("postWebhook", "postWebhookWithToken"):
        caliper = fixture("caliper/envelope-tooluse-progress.json")
        yield op, send(stack, op, "sensor", caliper, json_headers("sensor", caliper))  # 200, empty
        body = generic_event()
        yield op, send(stack, op, "generic", body, json_headers("generic", body))  # 202
        yield op, send(stack, op, "generic", b"{", json_headers("generic", b"{"))  # 400
        yield op, send(stack, op, "generic", body, {"content-type": "application/json"})  # 401
        yield op, send(stack, op, "no-such-source", body, json_headers("generic", body))  # 404
        yield op, send(stack, op, "generic", too_large, json_headers("generic", too_large))  # 413
        yield (
            op,
            send(stack, op, "generic", body, {**json_headers("generic", body), "content-type": "text/csv"}),
        )
        other = caliper_of_another_version()
        yield op, send(stack, op, "sensor", other, json_headers("sensor", other))  # 422
    # The token variant as its platforms use it: the token in the path.
    progress = fixture("teachable/lecture-progress.json")
    token = PATH_TOKENS["teachable"]
    yield (
        "postWebhookWithToken",
        send(stack, "postWebhookWithToken", "teachable", progress, json_headers("", b""), token),
    )
    yield (
        "postWebhookWithToken",
        send(stack, "postWebhookWithToken", "teachable", progress, json_headers("", b""), "bad"),
    )
    docebo = fixture("docebo/enrollment-updated.json")
    token = PATH_TOKENS["docebo"]
    yield (
        "postWebhookWithToken",
        send(stack, "postWebhookWithToken", "docebo", docebo, json_headers("", b""), token),
    )
    canvas = canvas_jwt(json.loads(fixture("canvas/course-progress.json")))
    yield "postWebhook", send(stack, "postWebhook", "canvas", canvas, {"content-type": "application/jwt"})
    op = "postXapiStatements"
    yield op, send(stack, op, "lrs", satisfied, xapi(satisfied))  # 200
    yield op, send(stack, op, "lrs", satisfied, json_headers("lrs", satisfied))  # 400: no version header
    yield op, send(stack, op, "lrs", satisfied, {"content-type": "application/json"})  # 401
    yield op, send(stack, op, "generic", satisfied, xapi(satisfied))  # 404: not an xAPI source
    yield op, send(stack, op, "lrs", too_large, xapi(too_large))  # 413
    yield op, send(stack, op, "lrs", satisfied, xapi(satisfied, **{"content-type": "text/plain"}))  # 415
    yield "getHealth", send(stack, "getHealth", "")


def test_every_declared_answer_is_reached_and_every_answer_is_declared(described: Stack) -> None:
    reached: set[Key] = set()
    for operation_id, answer in written_requests(described):
        reached.add(api.check(operation_id, answer))
    missing = api.documented() - api.REACHED_BY_UNIT_TEST - reached
    assert not missing, f"declared but reached by no test: {sorted(missing)}"


def test_methods_the_description_does_not_list_are_not_routed(described: Stack) -> None:
    """The host's routes declare their methods: any other is the host's bare 404 (never a 405), as the
    xAPI operation's description says."""
    origin = described.bridge.removesuffix("/api")
    for method, path in (
        ("GET", "/api/xapi/lrs/statements"),
        ("PUT", "/api/xapi/lrs/statements"),
        ("GET", "/api/webhooks/generic"),
        ("POST", "/api/health"),
    ):
        response = httpx.request(method, origin + path, timeout=10)
        assert (response.status_code, response.content) == (404, b""), (method, path)


# ---- generated requests ----------------------------------------------------------------------------

CONFIGURED = ["generic", "partner", "lrs", "sensor", "thinkific", "canvas", "teachable", "docebo"]
CONFIGURED += ["360learning", "learnworlds"]


def _serialised(body: Any, media_type: str | None) -> bytes:
    if body is None or type(body).__name__ == "NotSet":
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str) and media_type != "application/json":
        return body.encode("utf-8", "surrogatepass")
    return json.dumps(body).encode("utf-8", "surrogatepass")


def conformance_checks() -> list[Any]:
    from schemathesis.specs.openapi import checks

    return [
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_headers_conformance,
        checks.response_schema_conformance,
    ]


@pytest.mark.parametrize(
    ("operation_id", "mode"),
    # getHealth has nothing to break: no parameter, no body.
    [(op, mode) for op, _, _, _ in api.operations() for mode in ("positive", "negative") if op != "getHealth"]
    + [("getHealth", "positive")],
)
def test_generated_requests_get_only_declared_answers(described: Stack, operation_id: str, mode: str) -> None:
    """`positive`: requests that fit the description; `negative`: requests that break it (a missing
    header, a body of the wrong type), which must still get answers it declares."""
    path, method, _ = api.operation(operation_id)
    schema = schemathesis.openapi.from_path(str(api.DOCUMENT))
    strategy = schema[path][method.upper()].as_strategy(schemathesis.GenerationMode(mode))
    seen: set[Key] = set()

    @given(case=strategy, configured=st.sampled_from([*CONFIGURED, None]), authentic=st.booleans())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
    )
    def sends(case: Any, configured: str | None, authentic: bool) -> None:
        # Mostly a configured source (else the generated name: almost always 404), with its real
        # credentials half of the time, so that generated bodies reach the formats' parsers.
        source = configured or (case.path_parameters or {}).get("source", "")
        body = _serialised(case.body, case.media_type)
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "content-type"}
        if case.media_type:
            headers["content-type"] = case.media_type
        if authentic:
            headers.update(credentials(source, body))
        token = (
            PATH_TOKENS.get(source, "token")
            if authentic
            else str((case.path_parameters or {}).get("token", "t"))
        )
        response = request(described, operation_id, source, body, headers, token)
        answer = answer_of(response)
        assert answer.status < 500, f"{operation_id} {source}: {answer.status} {answer.body[:300]!r}"
        seen.add(api.check(operation_id, answer))
        # And as a vendor's tool reads the description: schemathesis' own conformance checks. (Caliper's
        # empty 200 is left out: no OpenAPI tool reads an empty body as JSON; the description says it.)
        if answer.body or not (answer.header("content-type") or "").startswith("application/json"):
            case.validate_response(response, checks=conformance_checks())

    sends()
    assert seen, "no request was sent"
