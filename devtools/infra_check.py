"""`python -m devtools.infra_check`: the offline infrastructure checks that `make test` runs.

1. What the Bicep compiler would refuse as not a deploy-time constant (devtools.deploy_time), on every
   file of infra/, or on the files given: `python -m devtools.infra_check some.bicep`.
2. The Flex Consumption scale block of every Function App (`functionAppConfig.scaleAndConcurrency`):
   only the properties ARM knows (a misspelt one is ignored by the platform and, offline, by every
   other check), with `maximumInstanceCount` and `triggers.http.perInstanceConcurrency` set and in
   range. The HTTP concurrency per instance is set there on Flex Consumption, not in host.json, whose
   HTTP limits Flex does not apply (azure-functions-host#11790).
3. checkov over infra/, with the skips in infra/.checkov.yaml. checkov pins pycep-parser 0.5.1, which
   predates Bicep's `extension` statement, the lambda function `toObject()` and `fail()`, so it would
   skip the Graph permissions, Function App and alerts modules as parsing errors. It scans a copy of
   infra/ in which the `extension` line is left out, each `toObject(...)` call reads `{}` and each
   `fail(` reads `string(` (line numbers kept), and fails
   on any parsing error, so no file goes unscanned. The unaltered files are parsed by the tests
   (tests/infra/, pycep-parser 0.7).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from devtools.deploy_time import check_file, parse

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
EXTENSION = "extension microsoftGraphV1\n"


def deploy_time(paths: list[Path]) -> int:
    failures = 0
    for path in paths:
        for finding in check_file(path):
            print(f"{path}: {finding}", file=sys.stderr)
            failures += 1
    print(f"deploy-time constants: {len(paths)} file(s), {failures} problem(s)")
    return 1 if failures else 0


#: `functionAppConfig.scaleAndConcurrency` as the Microsoft.Web API defines it (FunctionsScaleAndConcurrency:
#: alwaysReady, instanceMemoryMB, maximumInstanceCount, triggers.http.perInstanceConcurrency).
SCALE_SCHEMA: dict[str, Any] = {
    "alwaysReady": None,
    "instanceMemoryMB": None,
    "maximumInstanceCount": None,
    "triggers": {"http": {"perInstanceConcurrency": None}},
}
#: What each Flex Consumption app must set, and the values each may take: instance memory sizes and
#: at most 1,000 instances ("Azure Functions Flex Consumption plan hosting"); at least one request.
SCALE_REQUIRED = ("maximumInstanceCount", "triggers.http.perInstanceConcurrency")
SCALE_RANGES: dict[str, tuple[int, int]] = {
    "maximumInstanceCount": (1, 1000),
    "perInstanceConcurrency": (1, 1000),
}
INSTANCE_MEMORY_MB = frozenset({512, 2048, 4096})


def flex_scale(path: Path) -> list[str]:
    """What is wrong with the scale block of each Microsoft.Web/sites in one file (empty: nothing)."""
    document = parse(path.read_text(encoding="utf-8"))
    parameters: dict[str, Any] = document.get("parameters") or {}
    findings = []
    for symbol, resource in (document.get("resources") or {}).items():
        if resource.get("type") != "Microsoft.Web/sites":
            continue
        config = (resource["config"].get("properties") or {}).get("functionAppConfig")
        if config is None:
            continue
        scale = config.get("scaleAndConcurrency")
        if not isinstance(scale, dict):
            findings.append(f"resource {symbol}: functionAppConfig has no scaleAndConcurrency")
            continue
        findings += [f"resource {symbol}: {problem}" for problem in _scale_problems(scale, parameters)]
    return findings


def _scale_problems(scale: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    problems = [
        f"scaleAndConcurrency.{key} is not a property ARM knows" for key in _unknown(scale, SCALE_SCHEMA)
    ]
    for dotted in SCALE_REQUIRED:
        value: Any = scale
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            problems.append(f"scaleAndConcurrency.{dotted} must be set")
            continue
        low, high = SCALE_RANGES[dotted.rsplit(".", 1)[-1]]
        problems += [f"scaleAndConcurrency.{dotted} {p}" for p in _out_of_range(value, low, high, parameters)]
    memory = scale.get("instanceMemoryMB")
    if isinstance(memory, int) and memory not in INSTANCE_MEMORY_MB:
        problems.append(
            f"scaleAndConcurrency.instanceMemoryMB {memory} is not one of {sorted(INSTANCE_MEMORY_MB)}"
        )
    return problems


def _unknown(value: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list[str]:
    unknown = []
    for key, inner in value.items():
        if key not in schema:
            unknown.append(prefix + key)
        elif isinstance(schema[key], dict) and isinstance(inner, dict):
            unknown += _unknown(inner, schema[key], f"{prefix}{key}.")
    return unknown


def _out_of_range(value: Any, low: int, high: int, parameters: dict[str, Any]) -> list[str]:
    """A literal must lie in [low, high]; a parameter must be bounded inside it by its decorators."""
    if isinstance(value, int):
        return [] if low <= value <= high else [f"is {value}, outside {low}..{high}"]
    parameter = parameters.get(value) if isinstance(value, str) else None
    if parameter is None:
        return []  # an expression: the deployment checks it
    bounds = {d["type"]: d["argument"] for d in parameter.get("decorators", []) if "argument" in d}
    floor, ceiling = bounds.get("min_value"), bounds.get("max_value")
    if floor is None or ceiling is None or floor < low or ceiling > high:
        return [
            f"comes from parameter {value}, which needs @minValue({low}) and @maxValue({high}) or tighter"
        ]
    return []


def scale_configs(paths: list[Path]) -> int:
    failures = 0
    for path in paths:
        for finding in flex_scale(path):
            print(f"{path}: {finding}", file=sys.stderr)
            failures += 1
    print(f"Flex Consumption scale blocks: {len(paths)} file(s), {failures} problem(s)")
    return 1 if failures else 0


def for_checkov(text: str) -> str:
    """The text with what pycep-parser 0.5.1 cannot read neutralised, line numbers kept."""
    text = text.replace(EXTENSION, "\n")
    while (start := text.find("toObject(")) != -1:
        end = _closing_parenthesis(text, start + len("toObject("))
        text = text[:start] + "{}" + "\n" * text.count("\n", start, end) + text[end:]
    # fail('...') (Bicep's flow-control function, newer than pycep-parser 0.5.1) reads as string('...'):
    # same arguments, same line, an expression the parser knows.
    return re.sub(r"\bfail\(", "string(", text)


def _closing_parenthesis(text: str, index: int) -> int:
    """The index just past the `)` closing a call whose arguments start at `index`."""
    depth, quoted = 1, False
    while depth:
        char = text[index]
        if quoted:
            if char == "\\":
                index += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        index += 1
    return index


def checkov() -> int:
    if not CHECKOV.exists():
        print("checkov is not installed: run `make test` (it installs .venv-checkov).", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as workdir:
        staged = Path(workdir) / "infra"
        shutil.copytree(ROOT / "infra", staged)
        for path in staged.rglob("*.bicep"):
            path.write_text(for_checkov(path.read_text(encoding="utf-8")), encoding="utf-8")
        result = subprocess.run(
            [str(CHECKOV), "--config-file", str(ROOT / "infra" / ".checkov.yaml"), "-d", str(staged)],
            capture_output=True,
            text=True,
            check=False,
        )
    print(result.stdout.strip())
    if result.stderr.strip():
        print(result.stderr.strip(), file=sys.stderr)
    errors = re.search(r"Parsing errors: (\d+)", result.stdout)  # absent when there are none
    if errors is not None and int(errors.group(1)) != 0:
        print("checkov could not parse every Bicep file (see above).", file=sys.stderr)
        return 1
    return result.returncode


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv] or sorted((ROOT / "infra").rglob("*.bicep"))
    constants = deploy_time(paths)
    scale = scale_configs(paths)
    if argv:
        return constants or scale
    return constants or scale or checkov()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
