"""Reading infra/*.bicep offline with pycep-parser (no Bicep compiler installs on these machines)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"
# pycep-parser 0.5 predates Bicep's `extension` statement; the Graph module declares it on its own
# line, which is checked and then left out for parsing.
EXTENSION = "extension microsoftGraphV1\n"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parsed(relative: str) -> dict[str, Any]:
    text = (INFRA / relative).read_text(encoding="utf-8").replace(EXTENSION, "")
    document: Any = BicepParser().parse(text=text)
    return dict(document)


def resource(relative: str, symbol: str) -> dict[str, Any]:
    found: dict[str, Any] = parsed(relative)["resources"][symbol]
    return found


def config(relative: str, symbol: str) -> dict[str, Any]:
    found: dict[str, Any] = resource(relative, symbol)["config"]
    return found


def resources_of_type(resource_type: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(file, symbol, resource) for every resource of a type, in every file."""
    found = []
    for path in bicep_files():
        relative = str(path.relative_to(INFRA))
        for symbol, value in parsed(relative).get("resources", {}).items():
            if value["type"] == resource_type:
                found.append((relative, symbol, value))
    return found


def strings_in(value: Any) -> list[str]:
    """Every string anywhere in a parsed structure (keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *strings_in(v)]]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []
