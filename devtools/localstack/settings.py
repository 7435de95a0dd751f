"""local.settings.json for the local run: created from the sample, with a fresh secret per machine."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from devtools.localstack.processes import ROOT
from shared.config.settings import secret_setting_name

SAMPLE = ROOT / "local.settings.sample.json"
LOCAL = ROOT / "local.settings.json"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def ensure_local_settings(path: Path = LOCAL) -> dict[str, str]:
    """Create local.settings.json from the sample if absent; fill empty source secrets. Returns Values."""
    created = not path.exists()
    document: dict[str, Any] = json.loads((SAMPLE if created else path).read_text(encoding="utf-8"))
    values: dict[str, str] = document.setdefault("Values", {})
    changed = created
    for name in json.loads(values.get("BRIDGE_SOURCES", "{}")):
        key = secret_setting_name(name)
        if not values.get(key):
            values[key] = new_webhook_secret()
            changed = True
    if changed:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.chmod(path, 0o600)
        print(f"wrote {path.name} ({'from the sample' if created else 'new source secrets'})")
    return values
