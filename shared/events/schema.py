"""The published JSON Schema of the canonical event (schemas/canonical-event.schema.json).

Generated from the model, never edited by hand: `python -m shared.events.schema` rewrites it, and a
test fails when the committed file and the model disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.events.model import CanonicalEvent

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "canonical-event.schema.json"
SCHEMA_ID = "urn:viva-learning-bridge:schema:canonical-event:v1"


def canonical_event_schema() -> dict[str, Any]:
    schema = CanonicalEvent.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "description": (
            "A learner's progress in a course, as the bridge's generic webhook format accepts it "
            "(one object, or an array of them) and as every source format is translated into. "
            "`source` may be omitted in a webhook body: it is the source in the URL."
        ),
    }


def render() -> str:
    return json.dumps(canonical_event_schema(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    SCHEMA_PATH.parent.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
