"""The canonical format reference, rendered from the JSON Schema at build time (never written to docs/).

`docs/reference/canonical-event.md` holds the marker `<!-- canonical-event-schema -->`; the MkDocs hook
(devtools/docs/hooks.py) replaces it with `render(schema)`: one table for the event's own fields, one per
object it uses, the enumerations, and the schema itself. The schema is generated from the model
(`python -m shared.events.schema`, checked by a test), so the page follows the code on every build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "schemas" / "canonical-event.schema.json"
MARKER = "<!-- canonical-event-schema -->"

Schema = Mapping[str, Any]


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def anchor(name: str) -> str:
    """The heading id MkDocs (toc's default slugify) gives `## name` for a definition's name."""
    return name.lower()


def _cell(text: str) -> str:
    """Markdown table cell text: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _constraints(schema: Schema) -> list[str]:
    parts: list[str] = []
    if "format" in schema:
        parts.append(f"format `{schema['format']}`")
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None and high is not None:
        parts.append(f"{low}-{high} characters")
    elif high is not None:
        parts.append(f"at most {high} characters")
    elif low is not None:
        parts.append(f"at least {low} character" + ("" if low == 1 else "s"))
    if "minimum" in schema or "maximum" in schema:
        parts.append(f"{schema.get('minimum', '…')} to {schema.get('maximum', '…')}")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    return parts


def type_of(schema: Schema) -> str:
    """A property's type as a reader wants it: `string` (format, bounds), a link to an object's table,
    and "or `null`" for the optional fields pydantic writes as anyOf [X, null]."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{anchor(name)})"
    if "anyOf" in schema:
        options = [option for option in schema["anyOf"] if option.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        text = " or ".join(type_of(option) for option in options)
        return f"{text} or `null`" if nullable else text
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    constraints = _constraints(schema)
    return f"`{kind}`" + (f" ({'; '.join(constraints)})" if constraints else "")


def _default(schema: Schema) -> str:
    if "default" not in schema or schema["default"] is None:
        return ""
    return f" Default: `{json.dumps(schema['default'])}`."


def properties_table(schema: Schema, label: str = "field") -> str:
    required = set(schema.get("required", []))
    lines = [f"| {label} | type | required | meaning |", "| --- | --- | --- | --- |"]
    for name, prop in schema.get("properties", {}).items():
        meaning = prop.get("description", "")
        if not meaning and "$ref" in prop:
            meaning = "See " + type_of(prop) + "."
        lines.append(
            f"| `{name}` | {_cell(type_of(prop))} | {'yes' if name in required else 'no'} "
            f"| {_cell(meaning + _default(prop))} |"
        )
    return "\n".join(lines)


def _object_rules(schema: Schema) -> list[str]:
    rules: list[str] = []
    if schema.get("additionalProperties") is False:
        rules.append("Other fields are refused.")
    if schema.get("minProperties") == 1 and schema.get("maxProperties") == 1:
        rules.append("Exactly one of its fields.")
    return rules


def render(schema: Schema) -> str:
    """The reference's Markdown: the event, then each definition in the schema's own order."""
    out = [
        f"Schema `{schema.get('$id', '')}` (JSON Schema `{schema.get('$schema', '')}`).",
        "",
        _cell(schema.get("description", "")),
        "",
        "## CanonicalEvent",
        "",
        " ".join(_object_rules(schema)),
        "",
        properties_table(schema),
    ]
    for name, definition in schema.get("$defs", {}).items():
        out += ["", f"## {name}", ""]
        if definition.get("description"):
            out += [_cell(definition["description"]), ""]
        if definition.get("type") == "object":
            rules = _object_rules(definition)
            if rules:
                out += [" ".join(rules), ""]
            out.append(properties_table(definition))
        else:
            out.append(type_of(definition))
    out += [
        "",
        "## The schema",
        "",
        '??? note "schemas/canonical-event.schema.json"',
        "",
        "    ```json",
        *("    " + line for line in json.dumps(schema, indent=2).splitlines()),
        "    ```",
        "",
    ]
    return "\n".join(out)


#: A format page's marker for its options table: `<!-- format-options: NAME -->`.
OPTIONS_MARKER = re.compile(r"<!-- format-options: ([a-z0-9-]+) -->")

#: The options every format shares (shared/sources/base.py FormatOptions, where they are comments, not
#: field descriptions) and the vendor formats' `learner` (shared/sources/mapping.py VendorOptions).
SHARED_OPTION_MEANINGS = {
    "accountAttribute": "The Entra user attribute that holds a learner's platform account name "
    "(`employeeId`, `onPremisesSamAccountName`, an `extension_…` attribute). Without it, account "
    "learners are dead-lettered as `learnerNotResolvable`: the bridge never guesses.",
    "sharedActivityIds": "The source's `externalCourseActivityId`s address records shared with other "
    "systems: used verbatim instead of namespaced by the source (the owner is still checked).",
    "registerContent": "An event for a course Viva Learning does not know, carrying the course's title "
    "and URL, registers it (needs `LearningContent.ReadWrite.All`: Bicep `enableContentWrites`).",
    "contentLanguage": "The language tag of content `registerContent` registers.",
    "learner": "Which of the platform's identifiers names the learner: `email` (mail, then UPN, then "
    "otherMails), `upn`, `userId` (an Entra object id) or `account` (through `accountAttribute`).",
}


def options_schema(format_name: str) -> dict[str, Any]:
    """The JSON Schema of a format's options model (what the source's object in BRIDGE_SOURCES takes)."""
    from shared.sources.registry import format_class

    implementation = format_class(format_name)
    if implementation is None:
        raise ValueError(f"no format {format_name!r}")
    schema: dict[str, Any] = implementation.options_model.model_json_schema(by_alias=True)
    for name, prop in schema.get("properties", {}).items():
        if not prop.get("description") and name in SHARED_OPTION_MEANINGS:
            prop["description"] = SHARED_OPTION_MEANINGS[name]
    return schema


def render_options(format_name: str) -> str:
    """The options table of a format, then one table per object an option takes."""
    schema = options_schema(format_name)
    out = [
        f"Every option of `{format_name}`, from its options model (no other key is accepted):",
        "",
        properties_table(schema, label="option"),
    ]
    for name, definition in schema.get("$defs", {}).items():
        out += ["", f"### {name}", ""]
        if definition.get("description"):
            out += [_cell(definition["description"]), ""]
        out.append(
            properties_table(definition) if definition.get("type") == "object" else type_of(definition)
        )
    return "\n".join(out) + "\n"
