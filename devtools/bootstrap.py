"""Plain-Python equivalent of the Makefile, for machines without make:

    python3 devtools/bootstrap.py run     # = make run
    python3 devtools/bootstrap.py test    # = make test
    python3 devtools/bootstrap.py bench   # = make bench (arguments go to python -m devtools.bench)
    python3 devtools/bootstrap.py lock    # = make lock (arguments go to python -m devtools.locks compile)
    python3 devtools/bootstrap.py docs    # = make docs (arguments go to mkdocs serve)

Standard library only: it creates .venv from the lock requirements-dev.txt (--require-hashes), the npm
packages and, for `test` only, checkov's .venv-checkov, when they are missing or older than their
lists, then runs the same module make would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"


def _stale(marker: Path, *inputs: Path) -> bool:
    return not marker.exists() or any(p.stat().st_mtime > marker.stat().st_mtime for p in inputs)


def install(command: str) -> None:
    marker = VENV / ".installed"
    if _stale(marker, ROOT / "requirements.txt", ROOT / "requirements-dev.txt"):
        venv.create(VENV, with_pip=True)
        subprocess.check_call([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        subprocess.check_call(
            [
                str(PY),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--require-hashes",
                "-r",
                str(ROOT / "requirements-dev.txt"),
            ]
        )
        marker.touch()
    if command in ("lock", "docs"):
        return
    checkov = ROOT / ".venv-checkov"
    if command == "test" and _stale(checkov / ".installed", ROOT / "requirements-infra.txt"):
        venv.create(checkov, with_pip=True)
        subprocess.check_call(
            [
                str(checkov / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--require-hashes",
                "-r",
                str(ROOT / "requirements-infra.txt"),
            ]
        )
        (checkov / ".installed").touch()
    node_marker = ROOT / "node_modules" / ".installed"
    if _stale(node_marker, ROOT / "package.json", ROOT / "package-lock.json"):
        subprocess.check_call([_npm(), "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT)
        node_marker.touch()


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("Node.js and npm are needed (for Azurite); install Node.js 20 or newer.")
    return npm


def main() -> int:
    commands = {
        "run": ["devtools.localstack"],
        "test": ["devtools.check"],
        "bench": ["devtools.bench"],
        "lock": ["devtools.locks", "compile"],
        "docs": ["mkdocs", "serve"],
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    install(sys.argv[1])
    os.chdir(ROOT)
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")  # Material's end-of-life notice, on every build
    return subprocess.call([str(PY), "-m", *commands[sys.argv[1]], *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
