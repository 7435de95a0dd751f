"""The OpenAPI description of the bridge's HTTP endpoints (openapi/bridge.openapi.json), read as the
tests need it: what each operation declares it answers, and whether an answer the bridge gave is one of
them (status, content type, headers, body with its problem `type`).

An answer is named by its `Key`: the operation, the status and, for problem+json answers, the problem
type's slug. `documented()` lists every key the description declares; the tests reach each at least
once (tests/unit/test_openapi_description.py the ones the end-to-end stack cannot produce on demand,
tests/e2e/test_openapi_description.py the rest).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "openapi" / "bridge.openapi.json"
CANONICAL_SCHEMA = ROOT / "schemas" / "canonical-event.schema.json"
PROBLEM_PREFIX = "urn:viva-learning-bridge:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Key(NamedTuple):
    operation: str  # operationId
    status: int
    problem: str | None  # the problem type's slug, for problem+json answers


@dataclass(frozen=True)
class Answer:
    """What came back, whatever the client: status, headers (any case), raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


@cache
def registry() -> Registry[Any]:
    """The description and the canonical schema it refers to, under their file URIs (and the schema
    also under its `$id`, which its own `#/$defs/...` references resolve against)."""
    canonical = json.loads(CANONICAL_SCHEMA.read_text(encoding="utf-8"))
    schema_resource = DRAFT202012.create_resource(canonical)
    return Registry().with_resources(
        [
            (DOCUMENT.as_uri(), DRAFT202012.create_resource(document())),
            (CANONICAL_SCHEMA.as_uri(), schema_resource),
            (canonical["$id"], schema_resource),
        ]
    )


def validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at `pointer` (a JSON Pointer into the description)."""
    return Draft202012Validator({"$ref": f"{DOCUMENT.as_uri()}#{pointer}"}, registry=registry())


def resolve(node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """Follow a local `$ref` (a Response or Request Body object may be one); the node and its pointer."""
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = document()
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def operations() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(operationId, path, method, operation) for every operation."""
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield operation["operationId"], path, method, operation


def operation(operation_id: str) -> tuple[str, str, dict[str, Any]]:
    """(path, method, operation) of an operationId."""
    for found, path, method, declared in operations():
        if found == operation_id:
            return path, method, declared
    raise KeyError(operation_id)


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def response(operation_id: str, status: int) -> tuple[dict[str, Any], str] | None:
    """The declared Response object for a status (resolved), with its pointer; None if undeclared."""
    path, method, declared = operation(operation_id)
    found = declared["responses"].get(str(status))
    if found is None:
        return None
    return resolve(found, f"/paths/{_escape(path)}/{method}/responses/{status}")


def problem_types(media: dict[str, Any]) -> list[str]:
    """The problem type slugs a problem+json media type's schema allows."""
    schema, _ = resolve(media["schema"], "")
    enum: list[str] = schema["properties"]["type"]["enum"]
    return [value.removeprefix(PROBLEM_PREFIX) for value in enum]


def documented() -> set[Key]:
    """Every answer the description declares."""
    keys = set()
    for operation_id, _, _, declared in operations():
        for status in declared["responses"]:
            found = response(operation_id, int(status))
            assert found is not None
            media = found[0].get("content", {}).get(PROBLEM_MEDIA_TYPE)
            if media is None:
                keys.add(Key(operation_id, int(status), None))
            else:
                keys.update(Key(operation_id, int(status), slug) for slug in problem_types(media))
    return keys


def check(operation_id: str, answer: Answer) -> Key:
    """The answer's key, once it is shown to be one the description declares; AssertionError (saying
    what differs) otherwise."""
    found = response(operation_id, answer.status)
    assert found is not None, (
        f"{operation_id}: status {answer.status} is not declared ({answer.body[:300]!r})"
    )
    declared, pointer = found
    for name, header in declared.get("headers", {}).items():
        header, header_pointer = resolve(header, f"{pointer}/headers/{_escape(name)}")
        value = answer.header(name)
        if value is not None:
            errors = list(validator(f"{header_pointer}/schema").iter_errors(value))
            assert not errors, f"{operation_id} {answer.status}: header {name}: {errors[0].message}"
    content = declared.get("content")
    if not content:
        assert answer.body == b"", f"{operation_id} {answer.status}: declared without a body"
        return Key(operation_id, answer.status, None)
    content_type = answer.header("content-type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    assert media_type in content, (
        f"{operation_id} {answer.status}: content type {content_type!r} is not declared ({sorted(content)})"
    )
    if media_type == "application/json" and answer.body == b"":
        # Caliper's empty 200 (the description says so); nothing else may be empty.
        assert operation_id.startswith("postWebhook"), "an empty JSON answer"
        assert answer.status == 200, "an empty JSON answer"
        return Key(operation_id, answer.status, None)
    body = json.loads(answer.body)
    errors = list(validator(f"{pointer}/content/{_escape(media_type)}/schema").iter_errors(body))
    assert not errors, f"{operation_id} {answer.status}: {errors[0].message} in {body!r}"[:800]
    if media_type == PROBLEM_MEDIA_TYPE:
        assert body["status"] == answer.status, f"{operation_id}: problem status {body['status']}"
        return Key(operation_id, answer.status, body["type"].removeprefix(PROBLEM_PREFIX))
    return Key(operation_id, answer.status, None)


#: The answers the end-to-end stack cannot give on demand: the host's throttle (429), a bug (500),
#: and the three kinds of 503 (a source set aside, the app unconfigured, storage down). The unit test
#: produces each from the real HTTP functions and the dev host's throttle, and checks it here.
REACHED_BY_UNIT_TEST = frozenset(
    {Key(op, 429, None) for op in ("postWebhook", "postWebhookWithToken", "postXapiStatements", "getHealth")}
    | {
        Key(op, status, slug)
        for op in ("postWebhook", "postWebhookWithToken", "postXapiStatements")
        for status, slug in (
            (500, "internal-error"),
            (503, "source-not-configured"),
            (503, "app-not-configured"),
            (503, "queue-unavailable"),
        )
    }
    | {Key("getHealth", 503, None)}
    # The e2e stack runs with assignments enabled (its vendor sources assign).
    | {Key(op, 422, "assignments-disabled") for op in ("postWebhook", "postWebhookWithToken")}
)
