"""Validating request bodies against the vendored Graph v1.0 OpenAPI excerpt.

OpenAPI 3.0 schemas are not plain JSON Schema (`nullable`, discriminators), so the validation uses
openapi-schema-validator's write validator. On top of the schema, Graph rejects properties a type does
not declare and read-only ones such as `id`; the sandbox does the same, so a typo in the bridge's
body fails here rather than silently in production.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from devtools.graph_sandbox.errors import GraphHttpError, bad_request

OPENAPI_PATH = Path(__file__).parent / "openapi" / "graph-v1.0-learning.openapi-excerpt.json"
_URI = "urn:graph-v1.0-learning"
# `id` is Graph's key, never written. learningProviderId is writable on create only (the
# learningCourseActivity resource table marks it Required; rules.check_create_activity).
_READ_ONLY = frozenset({"id", "learningProviderId"})


@cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document


@cache
def _registry() -> Registry[Any]:
    resource = Resource.from_contents(_document(), default_specification=DRAFT4)
    registry: Registry[Any] = Registry().with_resource(_URI, resource)
    return registry


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = _document()["components"]["schemas"][f"microsoft.graph.{name}"]
    return schema


def declared_properties(name: str) -> set[str]:
    """Every property of a type, inherited ones included (allOf chains)."""
    found: set[str] = set()
    stack = [_schema(name)]
    while stack:
        schema = stack.pop()
        found |= set(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            ref = part.get("$ref")
            if ref:
                stack.append(_schema(ref.rsplit("/", 1)[1].removeprefix("microsoft.graph.")))
            else:
                stack.append(part)
    return found


def type_for(odata_type: Any, allowed: dict[str, str]) -> str:
    """The schema name the body's @odata.type selects among `allowed` (Graph's discriminator)."""
    if odata_type not in allowed:
        names = ", ".join(sorted(allowed))
        raise bad_request(f"@odata.type must be one of {names}; got {odata_type!r}.")
    return allowed[odata_type]


def validate_write(type_name: str, body: Any, writable_read_only: frozenset[str] = frozenset()) -> None:
    """Raise a Graph-shaped 400 unless `body` is a valid write of `type_name`."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    known = declared_properties(type_name)
    unknown = sorted(k for k in body if k not in known and not k.startswith("@odata."))
    if unknown:
        raise bad_request(
            f"Invalid property {unknown[0]!r}: it does not exist on type microsoft.graph.{type_name}."
        )
    read_only = sorted(k for k in body if k in _READ_ONLY - writable_read_only)
    if read_only:
        raise bad_request(f"Property {read_only[0]!r} is read-only and cannot be written.")
    # The OpenAPI description marks @odata.type required on every schema, an artefact of its conversion
    # from the metadata; the pages require it only where it picks a type (course activities, which the
    # handlers check), so the body is validated as its own type when it names none.
    body = {"@odata.type": f"#microsoft.graph.{type_name}", **body}
    schema = {"$ref": f"{_URI}#/components/schemas/microsoft.graph.{type_name}"}
    validator = OAS30WriteValidator(schema, registry=_registry(), format_checker=oas30_format_checker)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "body"
        raise GraphHttpError(400, "BadRequest", f"Invalid value at {where}: {first.message}")
