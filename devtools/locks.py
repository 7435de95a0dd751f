"""The dependency locks: what each `requirements*.txt` pins, generated from its human-edited input.

    python -m devtools.locks compile                       # = make lock: keeps today's pins where they fit
    python -m devtools.locks compile --upgrade-package X   # lets X (and what it needs) move
    python -m devtools.locks compile --upgrade             # every package to its newest allowed version
    python -m devtools.locks check                         # offline, in `make test`: exit 1 on a stale lock

| input (edited by hand) | lock (generated) | installed by |
| --- | --- | --- |
| `requirements.in` | `requirements.txt` | Azure's remote build (`pip install -r requirements.txt`) |
| `requirements-dev.in` (+ `-r requirements.in`, `-c requirements.txt`) | `requirements-dev.txt` | `.venv` |
| `requirements-infra.in` | `requirements-infra.txt` | `.venv-checkov` (checkov's own pins) |

The locks are made by `uv pip compile --universal --python-version 3.11 --generate-hashes`: one
resolution for every platform from Python 3.11 on (the deployed runtime, infra/modules/functionapp.bicep),
with environment markers that pip evaluates where it installs, so a lock made on a Mac or Windows still
holds Linux x86_64's packages for Azure, and every package carries the sha256 of each of its published
files, so `pip install --require-hashes` installs exactly those bytes. uv keeps the pins of the existing
lock unless the input no longer allows them, or `--upgrade`/`--upgrade-package` says otherwise.

Making a lock needs the package index; checking one does not: `make lock` writes, below uv's header,
the sha256 of its inputs' requirement lines (the .in files, comments and blank lines aside), and `check`
recomputes it. It also checks what a digest cannot: every line pinned with `==` and hashed, every input
requirement pinned at a version its range allows, and the dev lock running the app's lock's versions.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

# The deployed runtime (infra/modules/functionapp.bicep): the lowest Python the universal resolution serves.
PYTHON_VERSION = "3.11"
STAMP = "# inputs-sha256:"
STAMP_RE = re.compile(r"^# inputs-sha256: ([0-9a-f]{64})\b", re.MULTILINE)
# pip's own rule: a comment starts a line, or follows whitespace.
COMMENT_RE = re.compile(r"(^|\s+)#.*$")
OPTION_WITH_FILE_RE = re.compile(r"^(-r|--requirement|-c|--constraint)[\s=]+(\S+)$")
FIX = "run `make lock` (docs/deploy/upgrading.md)"


@dataclass(frozen=True)
class Lock:
    source: str  # the input a person edits
    output: str  # the generated lock


# In the order they are made: the dev lock is constrained by the app's.
LOCKS = (
    Lock("requirements.in", "requirements.txt"),
    Lock("requirements-dev.in", "requirements-dev.txt"),
    Lock("requirements-infra.in", "requirements-infra.txt"),
)
RUNTIME, DEV, INFRA = LOCKS


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503)
    version: str
    marker: str  # "" when the pin applies everywhere
    hashes: tuple[str, ...]
    line: str


def logical_lines(text: str) -> list[str]:
    """A requirements file's lines with comments removed and backslash continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = COMMENT_RE.sub("", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            lines.append(" ".join(line.split()))
    if pending.strip():
        lines.append(" ".join(pending.split()))
    return lines


def referenced_files(path: Path) -> list[tuple[str, Path]]:
    """The -r (requirements) and -c (constraints) files a requirements file names, relative to it."""
    found: list[tuple[str, Path]] = []
    for line in logical_lines(path.read_text(encoding="utf-8")):
        match = OPTION_WITH_FILE_RE.match(line)
        if match:
            kind = "-r" if match.group(1) in ("-r", "--requirement") else "-c"
            found.append((kind, (path.parent / match.group(2)).resolve()))
    return found


def inputs_of(source: Path) -> list[Path]:
    """The human-edited files a lock is made from: the input and every file it brings in with -r, each
    once, in order. A -c file is another lock (the dev lock's is the app's): rather than its bytes, the
    check compares the versions, so an update of both locks together (as an update bot makes it) needs
    no new stamp, and one that leaves the dev lock behind is still caught."""
    ordered: list[Path] = []

    def visit(path: Path) -> None:
        if path in ordered:
            return
        ordered.append(path)
        for kind, child in referenced_files(path):
            if kind == "-r":
                visit(child)

    visit(source.resolve())
    return ordered


def inputs_digest(root: Path, lock: Lock) -> str:
    digest = hashlib.sha256()
    for path in inputs_of(root / lock.source):
        digest.update(path.relative_to(root.resolve()).as_posix().encode() + b"\n")
        for line in logical_lines(path.read_text(encoding="utf-8")):
            digest.update(line.encode() + b"\n")
        digest.update(b"\0")
    return digest.hexdigest()


def requirements_of(source: Path) -> list[tuple[str, Requirement]]:
    """The requirements an input asks for, each with the file that says so: its own lines and those of
    the files it brings in with -r. A line that is no requirement raises InvalidRequirement."""
    found: list[tuple[str, Requirement]] = []
    for line in logical_lines(source.read_text(encoding="utf-8")):
        match = OPTION_WITH_FILE_RE.match(line)
        if match:
            if match.group(1) in ("-r", "--requirement"):
                found += requirements_of(source.parent / match.group(2))
            continue
        if line.startswith("-"):
            continue
        found.append((source.name, Requirement(line)))
    return found


def pins(text: str) -> list[Pin]:
    """Every requirement a lock holds, as written (a line that is not `name==version` is kept with its
    version empty, so the check can name it)."""
    found: list[Pin] = []
    for line in logical_lines(text):
        if line.startswith("-"):
            found.append(Pin(name=line, version="", marker="", hashes=(), line=line))
            continue
        hashes = tuple(re.findall(r"--hash=(\S+)", line))
        spec = re.sub(r"\s*--hash=\S+", "", line).strip()
        try:
            requirement = Requirement(spec)
        except InvalidRequirement:
            found.append(Pin(name=spec, version="", marker="", hashes=hashes, line=line))
            continue
        specifiers = list(requirement.specifier)
        exact = len(specifiers) == 1 and specifiers[0].operator == "==" and "*" not in specifiers[0].version
        found.append(
            Pin(
                name=canonicalize_name(requirement.name),
                version=specifiers[0].version if exact else "",
                marker=str(requirement.marker) if requirement.marker else "",
                hashes=hashes,
                line=line,
            )
        )
    return found


def problems(root: Path = ROOT) -> list[str]:
    """Why the locks cannot be trusted as they stand: each entry names the file and what to do."""
    found: list[str] = []
    locked: dict[str, list[Pin]] = {}
    for lock in LOCKS:
        output = root / lock.output
        if not output.exists():
            found.append(f"{lock.output} is missing: {FIX}")
            continue
        text = output.read_text(encoding="utf-8")
        stamp = STAMP_RE.search(text)
        if stamp is None:
            found.append(f"{lock.output} has no '{STAMP}' line: it was not made by `make lock`; run it")
        elif stamp.group(1) != inputs_digest(root, lock):
            names = ", ".join(p.relative_to(root.resolve()).as_posix() for p in inputs_of(root / lock.source))
            found.append(f"{lock.output} is stale: its inputs ({names}) changed since it was made: {FIX}")
        locked[lock.output] = pins(text)
        for pin in locked[lock.output]:
            if not pin.version:
                found.append(f"{lock.output}: not an exact pin: {pin.line[:120]}")
            elif not pin.hashes:
                found.append(f"{lock.output}: {pin.name}=={pin.version} has no --hash")
            elif not all(h.startswith("sha256:") for h in pin.hashes):
                found.append(f"{lock.output}: {pin.name}=={pin.version} has a hash that is not sha256")
        by_name: dict[str, list[Pin]] = {}
        for pin in locked[lock.output]:
            by_name.setdefault(pin.name, []).append(pin)
        try:
            asked = requirements_of(root / lock.source)
        except InvalidRequirement as error:
            found.append(f"{lock.source} (or a file it brings in with -r): {error}")
            asked = []
        for origin, requirement in asked:
            name = canonicalize_name(requirement.name)
            versions = [p.version for p in by_name.get(name, []) if p.version]
            if not versions:
                found.append(f"{lock.output} does not pin {name} ({origin} asks for it): {FIX}")
            elif not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
                found.append(
                    f"{lock.output} pins {name}=={versions[0]}, outside {origin}'s "
                    f"'{requirement.specifier}': {FIX}"
                )
    runtime, dev = locked.get(RUNTIME.output), locked.get(DEV.output)
    if runtime is not None and dev is not None:
        dev_versions: dict[str, set[str]] = {}
        for pin in dev:
            dev_versions.setdefault(pin.name, set()).add(pin.version)
        for pin in runtime:
            others = dev_versions.get(pin.name, set())
            if pin.version not in others:
                found.append(
                    f"{DEV.output} runs {pin.name} at {', '.join(sorted(others)) or 'no version'}, the app's "
                    f"lock ({RUNTIME.output}) at {pin.version}: {FIX}"
                )
    return found


def compile_locks(root: Path, upgrade: bool, upgrade_packages: list[str]) -> None:
    for lock in LOCKS:
        argv = [
            sys.executable,
            "-m",
            "uv",
            "pip",
            "compile",
            "--quiet",
            "--universal",
            "--python-version",
            PYTHON_VERSION,
            "--generate-hashes",
            "--custom-compile-command",
            "make lock",
            lock.source,
            "--output-file",
            lock.output,
        ]
        if upgrade:
            argv.append("--upgrade")
        for package in upgrade_packages:
            argv += ["--upgrade-package", package]
        print(f"==> {lock.source} -> {lock.output}", flush=True)
        subprocess.run(argv, cwd=root, check=True)
        stamp(root, lock)


def stamp(root: Path, lock: Lock) -> None:
    """Write the inputs' digest below uv's header (the header's own comment lines)."""
    output = root / lock.output
    lines = [line for line in output.read_text(encoding="utf-8").splitlines() if not line.startswith(STAMP)]
    header = 0
    while header < len(lines) and lines[header].startswith("#"):
        header += 1
    note = f"{STAMP} {inputs_digest(root, lock)} (checked by `make test`: devtools/locks.py)"
    lines.insert(header, note)
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.locks", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("compile", help="regenerate the locks from their inputs (needs the index)")
    make.add_argument("--upgrade", action="store_true", help="every package to its newest allowed version")
    make.add_argument("--upgrade-package", action="append", default=[], metavar="NAME", help="let NAME move")
    commands.add_parser("check", help="offline: fail when a lock is stale, unpinned or unhashed")
    args = parser.parse_args(argv)
    if args.command == "compile":
        compile_locks(ROOT, args.upgrade, args.upgrade_package)
    found = problems(ROOT)
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        return 1
    outputs = ", ".join(lock.output for lock in LOCKS)
    print(f"locks: {outputs} match their inputs, every package pinned and hashed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
