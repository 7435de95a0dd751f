"""`python -m devtools.infra_check`: the offline infrastructure checks that `make test` runs.

1. What the Bicep compiler would refuse as not a deploy-time constant (devtools.deploy_time), on every
   file of infra/, or on the files given: `python -m devtools.infra_check some.bicep`.
2. checkov over infra/, with the skips in infra/.checkov.yaml. checkov pins pycep-parser 0.5.1, which
   predates Bicep's `extension` statement and the lambda function `toObject()`, so it would skip the
   Graph permissions and Function App modules as parsing errors. It scans a copy of infra/ in which the
   `extension` line is left out and each `toObject(...)` call reads `{}` (line numbers kept), and fails
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

from devtools.deploy_time import check_file

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


def for_checkov(text: str) -> str:
    """The text with what pycep-parser 0.5.1 cannot read neutralised, line numbers kept."""
    text = text.replace(EXTENSION, "\n")
    while (start := text.find("toObject(")) != -1:
        end = _closing_parenthesis(text, start + len("toObject("))
        text = text[:start] + "{}" + "\n" * text.count("\n", start, end) + text[end:]
    return text


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
    if argv:
        return deploy_time([Path(arg) for arg in argv])
    constants = deploy_time(sorted((ROOT / "infra").rglob("*.bicep")))
    return constants or checkov()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
