"""`python -m devtools.infra_check`: checkov over infra/, offline, with the skips in infra/.checkov.yaml.

checkov's Bicep parser (pycep) predates Bicep's `extension` statement, so it would skip the Graph
permissions module as a parsing error. The check scans a copy of infra/ in which that one line is
left out, and fails on any parsing error, so no file goes unscanned.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
EXTENSION = "extension microsoftGraphV1\n"


def main() -> int:
    if not CHECKOV.exists():
        print("checkov is not installed: run `make test` (it installs .venv-checkov).", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as workdir:
        staged = Path(workdir) / "infra"
        shutil.copytree(ROOT / "infra", staged)
        for path in staged.rglob("*.bicep"):
            path.write_text(path.read_text(encoding="utf-8").replace(EXTENSION, ""), encoding="utf-8")
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


if __name__ == "__main__":
    sys.exit(main())
