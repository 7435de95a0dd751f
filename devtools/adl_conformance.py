"""`python -m devtools.adl_conformance SUITE`: the ADL LRS conformance suite's statement cases through
the bridge's xAPI parser, with figures.

SUITE is a checkout of https://github.com/adlnet/lrs-conformance-test-suite (MIT). Its statement cases
live in `test/<version>/configs/*.js` (a name, a list of templates and overrides, and the status an
LRS must answer: 200 to accept, 400 to reject) and `test/<version>/templates/<folder>/<name>.json`.
The configs are JavaScript, so Node.js (which `make` installs for Azurite) evaluates them to JSON;
the templates are then merged here exactly as the suite's `helper.createTestObject` does (a deep
jQuery-style extend, innermost override first).

For each case the statement is POSTed, as a parser call, to an xAPI source on the LRS endpoint with
the matching X-Experience-API-Version: a must-accept case passes when the parser translates it or
ignores it with a reason; a must-reject case passes when the parser refuses it (400). Nothing here
needs the network or the suite at test time: tests/fixtures/xapi/conformance holds a small set of
cases modelled on it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.config.settings import SourceSettings
from shared.sources.base import Delivery
from shared.sources.exceptions import InvalidPayload
from shared.sources.registry import build_source

VERSIONS = {"v1_0_3": "1.0.3", "v2_0": "2.0.0"}

_NODE = r"""
const fs = require('fs'), path = require('path');
const dir = process.argv[1], out = [];
// A few configs import the suite's helper only for generateUUID; the helper itself needs the suite's
// own npm packages, so a stand-in takes its place.
const helper = path.resolve(dir, '..', '..', 'helper.js');
require.cache[helper] = {id: helper, filename: helper, loaded: true,
                         exports: {generateUUID: () => require('crypto').randomUUID()}};
for (const file of fs.readdirSync(dir).filter(f => f.endsWith('.js')).sort()) {
  let groups;
  try { groups = require(path.resolve(dir, file)).config(); }
  catch (e) { out.push({file, error: String(e.message).split('\n')[0]}); continue; }
  for (const group of groups) for (const test of group.config)
    out.push({file, group: group.name, name: test.name, templates: test.templates, json: test.json,
              expect: test.expect});
}
process.stdout.write(JSON.stringify(out));
"""


@dataclass(frozen=True)
class Case:
    version: str
    file: str
    name: str
    statement: Any
    must_accept: bool


def load_cases(suite: Path, version_dir: str) -> tuple[list[Case], list[str]]:
    """The suite's statement cases for one version, and the config files that could not be read."""
    root = suite / "test" / version_dir
    node = shutil.which("node")
    if node is None:
        raise SystemExit("Node.js is needed to read the suite's configs (make installs it for Azurite).")
    command = [node, "-e", _NODE, str(root / "configs")]
    raw = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    skipped = sorted({f"{item['file']}: {item['error']}" for item in raw if "error" in item})
    cases = []
    for item in raw:
        if "error" in item or item.get("expect") not in ([200], [204], [400]):
            continue
        statement = (
            _build(root / "templates", item["templates"]) if item.get("templates") else item.get("json")
        )
        cases.append(
            Case(VERSIONS[version_dir], item["file"], item["name"], statement, item["expect"] != [400])
        )
    return cases, skipped


def _build(templates: Path, items: list[dict[str, Any]]) -> Any:
    """helper.convertTemplate + helper.createTestObject: resolve `{{folder.name}}`, then merge each
    entry into the value of the one before it, innermost first."""
    resolved = []
    for item in items:
        [(key, value)] = item.items()
        if isinstance(value, str) and value.startswith("{{") and value.endswith("}}"):
            folder, name = value[2:-2].split(".", 1)
            value = json.loads((templates / folder / f"{name}.json").read_text(encoding="utf-8"))
        resolved.append({key: value})
    merged = resolved[-1]
    for outer in reversed(resolved[:-1]):
        [(key, value)] = outer.items()
        merged = {key: _extend(value, merged)}
    [(_, statement)] = merged.items()
    return statement


def _extend(target: Any, source: Any) -> Any:
    """npm `extend(true, target, source)`: plain objects and arrays merged deeply (arrays by index),
    anything else copied over; returns the merged target."""
    if isinstance(source, dict):
        merged: Any = target if isinstance(target, dict) else {}
        for key, value in source.items():
            merged[key] = _extend(merged.get(key), value) if isinstance(value, dict | list) else value
        return merged
    if isinstance(source, list):
        items: list[Any] = target if isinstance(target, list) else []
        for index, value in enumerate(source):
            if index >= len(items):
                items.append(None)
            items[index] = _extend(items[index], value) if isinstance(value, dict | list) else value
        return items
    return source


def outcome(case: Case) -> str:
    """accepted (translated or ignored with a reason) or rejected (400)."""
    source = build_source(SourceSettings(name="lrs", format="xapi", options={}), offline=True)
    body = json.dumps(case.statement).encode()
    headers = {"content-type": "application/json", "x-experience-api-version": case.version}
    try:
        source.parse(Delivery("lrs", body, headers, datetime.now(UTC), None, "xapi"))
    except InvalidPayload:
        return "rejected"
    return "accepted"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.adl_conformance", description=__doc__)
    parser.add_argument("suite", type=Path, help="a checkout of adlnet/lrs-conformance-test-suite")
    parser.add_argument("--failures", action="store_true", help="list every case the parser gets wrong")
    args = parser.parse_args()
    worst = 100.0
    for version_dir, version in VERSIONS.items():
        cases, skipped = load_cases(args.suite, version_dir)
        counts: Counter[tuple[bool, str]] = Counter()
        for case in cases:
            result = outcome(case)
            counts[(case.must_accept, result)] += 1
            if args.failures and (result == "accepted") != case.must_accept:
                print(f"  {version} {case.file}: {case.name} -> {result}")
        accept_total = counts[(True, "accepted")] + counts[(True, "rejected")]
        reject_total = counts[(False, "accepted")] + counts[(False, "rejected")]
        rejected_share = 100 * counts[(False, "rejected")] / max(reject_total, 1)
        print(
            f"xAPI {version}: must-accept {counts[(True, 'accepted')]}/{accept_total} accepted; "
            f"must-reject {counts[(False, 'rejected')]}/{reject_total} rejected ({rejected_share:.1f} %)"
        )
        for line in skipped:
            print(f"  not read: {line}")
        worst = min(worst, rejected_share) if counts[(True, "rejected")] == 0 else 0.0
    return 0 if worst >= 95 else 1


if __name__ == "__main__":
    sys.exit(main())
