"""The API description's vendor examples on the docs site, with the fixtures as their only source.

openapi/bridge.openapi.json gives each vendor's payload as an Example Object with an `externalValue`
(`../tests/fixtures/<vendor>/<event>.json`): the same files the tests send, so an example cannot drift
from what the bridge accepts (tests/unit/test_openapi_description.py validates each against its schema).
Two readers need more than the reference:

- neoteroi-mkdocs's OAD renderer shows an example's `value` only. The build hook renders the API page's
  description from a copy in which each `externalValue` is replaced by the file's content as `value`
  (`with_inline_values`; OpenAPI 3.1 makes the two fields mutually exclusive), with the renderer and
  options the OAD plugin has in mkdocs.yml.
- A tool pointed at the description the site publishes (`/openapi/bridge.openapi.json`) resolves each
  `externalValue` against that address: the site publishes every file the description names, under its
  path in the repository (`published_files`), as it does the JSON Schema its `$ref` names.
"""

from __future__ import annotations

import copy
import json
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: The description, at its path in the repository and on the site.
DESCRIPTION = "openapi/bridge.openapi.json"


def load(root: Path = ROOT) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((root / DESCRIPTION).read_text(encoding="utf-8"))
    return document


def example_objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every Example Object of an OpenAPI document: the entries of each `examples` map (a Media Type's,
    a Parameter's, `components.examples`). JSON Schema's own `examples` keyword is a list, not a map."""
    if isinstance(node, dict):
        examples = node.get("examples")
        if isinstance(examples, dict):
            yield from (example for example in examples.values() if isinstance(example, dict))
        for value in node.values():
            yield from example_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from example_objects(item)


def published_files(document: dict[str, Any]) -> list[str]:
    """The site paths of the files the description's `externalValue`s name, relative to the site's root
    (the description sits at DESCRIPTION). A reference that leaves the repository fails the build."""
    found: list[str] = []
    for example in example_objects(document):
        reference = example.get("externalValue")
        if not isinstance(reference, str) or "://" in reference:
            continue
        path = posixpath.normpath(posixpath.join(posixpath.dirname(DESCRIPTION), reference))
        if path.startswith("../") or path.startswith("/"):
            raise ValueError(f"{DESCRIPTION}: externalValue {reference!r} leaves the repository")
        if path not in found:
            found.append(path)
    return found


def with_inline_values(document: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """A copy of the description in which each Example Object's local `externalValue` is replaced by the
    content of the file it names, as `value` (parsed when the file is JSON)."""
    inlined = copy.deepcopy(document)
    base = (root / DESCRIPTION).parent
    for example in example_objects(inlined):
        reference = example.get("externalValue")
        if not isinstance(reference, str) or "://" in reference:
            continue
        text = (base / reference).read_text(encoding="utf-8")
        example["value"] = json.loads(text) if reference.endswith(".json") else text
        del example["externalValue"]
    return inlined
