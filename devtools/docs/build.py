"""`make test`'s docs step: `mkdocs build --strict` into a temporary directory, removed afterwards.

Strict mode turns every warning into a failure: a broken link or anchor, a page left out of the nav
(mkdocs.yml `validation`), a missing snippet, the reference page's lost marker. `make docs` serves the
same site (`mkdocs serve`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    # Material's notice about its own end of life is printed on every build: not a finding of ours.
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    with tempfile.TemporaryDirectory(prefix="bridge-docs-") as site:
        # Not --quiet: it hides the warnings from the counter strict mode reads, and the build passes.
        command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", site]
        return subprocess.call(command, cwd=ROOT, env=environment)


if __name__ == "__main__":
    sys.exit(main())
