"""`make test`: the dependency locks (offline), ruff (lint, format), mypy, checkov (infra/), the docs site
(`mkdocs build --strict` into a temporary directory, a few seconds), then pytest; all run, any failure
fails.

pytest's exit status 5 (no tests collected) counts as a failure: a suite that silently runs nothing
must never pass.
"""

from __future__ import annotations

import subprocess
import sys

STEPS = [
    ("locks", [sys.executable, "-m", "devtools.locks", "check"]),
    ("ruff", [sys.executable, "-m", "ruff", "check", "."]),
    ("ruff format", [sys.executable, "-m", "ruff", "format", "--check", "."]),
    ("mypy", [sys.executable, "-m", "mypy"]),
    ("checkov", [sys.executable, "-m", "devtools.infra_check"]),
    ("docs", [sys.executable, "-m", "devtools.docs.build"]),
    ("pytest", [sys.executable, "-m", "pytest", *sys.argv[1:]]),
]


def main() -> int:
    failed = []
    for name, argv in STEPS:
        print(f"==> {name}", flush=True)
        code = subprocess.call(argv)
        if code == 5 and name == "pytest":
            print("pytest collected no tests: that is a failure here.", flush=True)
        if code != 0:
            failed.append(f"{name} (exit {code})")
    if failed:
        print(f"make test FAILED: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
