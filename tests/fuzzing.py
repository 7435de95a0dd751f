"""Hypothesis strategies for hostile deliveries, per format, and the ingestor they are driven through.

A delivery is built in three layers, each drawn by hypothesis: a body (arbitrary JSON, a fixture of
the format with mutations, or raw bytes), the format's own authentication computed over that body (so
the parser is reached, not just the signature check), and header values that may be anything a
client can put on the wire. The invariant the tests check is the issue's: every delivery gets one of
the documented answers, never an exception.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import strategies as st
from pydantic import SecretStr

from shared.config.settings import SourceSettings
from shared.ingest import WebhookIngestor, WebhookRequest
from shared.sources.registry import build_sources
from tests.builders import FIXTURES, TEST_SECRET, event, signed_headers
from tests.fakes import FakeQueue

CANVAS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_CANVAS_JWK = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(CANVAS_KEY.public_key()))

#: One source per format, the secrets the signers below use.
SOURCES: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "generic": ("generic", {}, TEST_SECRET),
    "xapi": ("xapi", {"accountAttribute": "employeeId"}, "key:secret"),
    "caliper": ("caliper", {"accountAttribute": "employeeId"}, "sensor-token"),
    "thinkific": ("thinkific", {}, "thinkific-key"),
    "canvas": ("canvas", {"jwks": {"keys": [{**_CANVAS_JWK, "kid": "k1", "alg": "RS256"}]}}, None),
    "canvas-token": ("canvas", {"auth": "token"}, "canvas-token"),
    "teachable": ("teachable", {}, "teachable-token"),
    "docebo": ("docebo", {"accountAttribute": "employeeId"}, "docebo-token"),
    "360learning": ("360learning", {"accountAttribute": "employeeId"}, TEST_SECRET),
    "learnworlds": ("learnworlds", {}, "lw-token"),
    # the vendor formats whose enrolments are assignments, with assignments on
    "docebo-assigning": ("docebo", {"accountAttribute": "employeeId", "assignments": True}, "docebo-token"),
    "canvas-assigning": (
        "canvas",
        {"auth": "token", "assignments": True, "learner": "account", "accountAttribute": "employeeId"},
        "canvas-token",
    ),
    "360learning-assigning": (
        "360learning",
        {"accountAttribute": "employeeId", "assignments": True},
        TEST_SECRET,
    ),
}

#: The answers the issue allows for anything a sender can send (503 only when storage is down).
ALLOWED = frozenset({200, 202, 400, 401, 404, 413, 415, 422})
MAX_BODY_BYTES = 1024 * 1024


def ingestor(queue: FakeQueue) -> WebhookIngestor:
    settings = {
        name: SourceSettings(
            name=name,
            format=fmt,
            options=options,
            secret=SecretStr(secret) if secret is not None else None,
        )
        for name, (fmt, options, secret) in SOURCES.items()
    }
    return WebhookIngestor(build_sources(settings), queue, MAX_BODY_BYTES)


# ---- bodies ---------------------------------------------------------------------------------------

EDGE_TIMESTAMPS = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0000-00-00T00:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-11-20T24:00:00Z",
    "2026-11-20T10:00:00+24:00",
    "2026-11-20T10:00:00.1234567890123Z",
    "2026-11-20",
    "",
    1e20,
    -1e20,
    1e308,
    2**63,
    -(2**63),
    0,
    -1,
    1.5,
]
EXTREME_NUMBERS = [0, -1, 2**31, 2**64, -(2**64), 10**300, 1e308, -1e308, 1e-308, 0.5, 100.0000001]
WEIRD_TEXT = ["", " ", "\u0000", "\u202e", "é" * 300, "😀", "\ud800", "a" * 70_000, "mailto:", "http://["]
JSON_CONSTANTS = ["NaN", "Infinity", "-Infinity"]


@functools.cache
def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(EXTREME_NUMBERS),
        st.text(max_size=30),
        st.sampled_from(WEIRD_TEXT),
        st.sampled_from(EDGE_TIMESTAMPS),
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def _deep(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


@functools.cache
def _samples(format_name: str) -> list[Any]:
    if format_name == "generic":
        return [
            event(),
            [event(eventId="a"), event(eventId="b", status="completed", completionPercentage=None)],
        ]
    folder = {
        "canvas-token": "canvas",
        "canvas-assigning": "canvas",
        "docebo-assigning": "docebo",
        "360learning-assigning": "360learning",
    }.get(format_name, format_name)
    documents = [json.loads(p.read_bytes()) for p in sorted((FIXTURES / folder).glob("*.json"))]
    if format_name == "caliper":  # bare events too: the first event of each envelope, and arrays of them
        events = [
            item for doc in documents for item in doc["data"] if str(item.get("type", "")).endswith("Event")
        ]
        documents += [events[0], events]
    return documents


def _paths(document: Any) -> list[tuple[Any, ...]]:
    """Every location in a document (container paths included), to mutate one."""
    found: list[tuple[Any, ...]] = [()]
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        children = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
        )
        for key, child in children:
            found.append((*path, key))
            stack.append((child, (*path, key)))
    return found


def _replacement(draw: st.DrawFn, current: Any) -> Any:
    kind = draw(st.sampled_from(["json", "timestamp", "number", "text", "deep", "swap", "huge"]))
    if kind == "json":
        return draw(json_values())
    if kind == "timestamp":
        return draw(st.sampled_from(EDGE_TIMESTAMPS))
    if kind == "number":
        return draw(st.sampled_from(EXTREME_NUMBERS) | st.integers() | st.floats(allow_nan=True))
    if kind == "text":
        return draw(st.sampled_from(WEIRD_TEXT) | st.text())
    if kind == "deep":
        return _deep(draw(st.sampled_from([50, 70, 200, 900])), draw(st.sampled_from(["list", "dict"])))
    if kind == "huge":
        return draw(st.sampled_from([["x"] * 600, {str(i): i for i in range(600)}, "x" * 60_000]))
    # swap: the same value in another type
    return draw(st.sampled_from([[current], {"value": current}, str(current), None, 0, True]))


@st.composite
def mutated(draw: st.DrawFn, format_name: str) -> Any:
    document = copy.deepcopy(draw(st.sampled_from(_samples(format_name))))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            document = _replacement(draw, document)
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = _replacement(draw, parent[path[-1]])
    return document


def _dumps(document: Any) -> bytes:
    return json.dumps(document, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


@functools.cache
def bodies(format_name: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        mutated(format_name).map(_dumps),
        json_values(max_leaves=40).map(_dumps),
        st.binary(max_size=200),
        st.sampled_from(
            [
                b"[" * 100_000 + b"]" * 100_000,
                b'{"a":' * 30_000 + b"1" + b"}" * 30_000,
                b"\xff\xfe{}",
                b"\xef\xbb\xbf{}",
                b'{"a": 1' + b"9" * 5000 + b"}",
                b'["\\ud800"]',
            ]
            + [c.encode() for c in JSON_CONSTANTS]
        ),
    )


# ---- authentication over the drawn body -------------------------------------------------------------

Signer = Callable[[bytes], tuple[bytes, dict[str, str], str | None]]


def _standard(body: bytes) -> tuple[bytes, dict[str, str], str | None]:
    headers = signed_headers(body.decode("utf-8", "replace").encode(), msg_id=f"msg_{uuid.uuid4().hex}")
    # sign the real bytes (the library only signs text): recompute over the raw body
    key = base64.b64decode(TEST_SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    headers["webhook-signature"] = (
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    )
    return body, headers, None


def _canvas_jwt(body: bytes) -> tuple[bytes, dict[str, str], str | None]:
    try:
        claims = json.loads(body)
    except (ValueError, RecursionError):
        return body, {"content-type": "application/jwt"}, None
    if not isinstance(claims, dict):
        return body, {"content-type": "application/jwt"}, None
    claims = {**claims, "exp": int(time.time()) + 300}
    try:
        token = jwt.encode(claims, CANVAS_KEY, algorithm="RS256", headers={"kid": "k1"})
    except (TypeError, ValueError, RecursionError):
        return body, {"content-type": "application/jwt"}, None
    return token.encode(), {"content-type": "application/jwt"}, None


JSON = {"content-type": "application/json"}
SIGNERS: dict[str, Signer] = {
    "generic": _standard,
    "360learning": _standard,
    "xapi": lambda b: (
        b,
        {**JSON, "authorization": "Basic " + base64.b64encode(b"key:secret").decode()},
        None,
    ),
    "caliper": lambda b: (b, {**JSON, "authorization": "Bearer sensor-token"}, None),
    "thinkific": lambda b: (
        b,
        {**JSON, "x-thinkific-hmac-sha256": hmac.new(b"thinkific-key", b, hashlib.sha256).hexdigest()},
        None,
    ),
    "canvas": _canvas_jwt,
    "canvas-token": lambda b: (b, JSON, "canvas-token"),
    "teachable": lambda b: (b, JSON, "teachable-token"),
    "docebo": lambda b: (b, JSON, "docebo-token"),
    "docebo-assigning": lambda b: (b, JSON, "docebo-token"),
    "canvas-assigning": lambda b: (b, JSON, "canvas-token"),
    "360learning-assigning": _standard,
    "learnworlds": lambda b: (b, {**JSON, "learnworlds-webhook-signature": "lw-token"}, None),
}

HEADER_NAMES = [
    "authorization",
    "content-type",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-experience-api-version",
    "x-thinkific-hmac-sha256",
    "learnworlds-webhook-signature",
    "x-webhook-token",
]
HEADER_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["Bearer \xff", "Bearer \udcff", "Basic \udcff\udcfe", "Basic ////", "Bearer ", "v1,", "v1"]
    ),
    st.binary(max_size=20).map(lambda b: b.decode("latin-1")),
    st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape")),
)


@st.composite
def requests(draw: st.DrawFn, source: str) -> WebhookRequest:
    body, headers, token = SIGNERS[source](draw(bodies(source)))
    headers = dict(headers)
    if source in ("xapi",) and draw(st.booleans()):
        endpoint = "xapi"
        headers["x-experience-api-version"] = draw(st.sampled_from(["1.0.3", "2.0.0", "1.0", "0.95"]))
    else:
        endpoint = "webhook"
    if draw(st.integers(min_value=0, max_value=4)) == 0:  # now and then, hostile header values
        for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=3)):
            headers[name] = draw(HEADER_VALUES)
        if draw(st.booleans()):
            token = draw(st.none() | HEADER_VALUES)
    return WebhookRequest(source, headers, body, token, endpoint)
