"""Another commit of this repository checked out beside the working tree, so a measurement can run the
code before a change and after it in one session on one machine (a shared machine's load changes
from one hour to the next; a ratio is only worth quoting when both sides ran under the same load).

The checkout is a detached `git worktree` in a temporary directory, removed afterwards. It shares the
working tree's `.venv` and `node_modules` (the dependencies did not change enough to matter; a
baseline that needs others fails with its own ImportError, which is reported as it is).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtools.localstack.processes import ROOT


class BaselineError(RuntimeError):
    """The commit could not be checked out."""


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The tree of `ref` (a commit, tag or branch), for as long as the block runs."""
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as parent:
        tree = Path(parent) / "tree"
        _git("worktree", "add", "--detach", str(tree), ref)
        try:
            for shared in (".venv", "node_modules"):
                if (ROOT / shared).exists():
                    (tree / shared).symlink_to(ROOT / shared)
            yield tree
        finally:
            _git("worktree", "remove", "--force", str(tree))


def describe(ref: str) -> str:
    """`ref` as a short commit id and subject, for the report's header."""
    return _git("log", "-1", "--format=%h %s", ref).strip()


def _git(*args: str) -> str:
    executable = shutil.which("git")
    if executable is None:
        raise BaselineError("git is not installed: a baseline needs it")
    result = subprocess.run([executable, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BaselineError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout
