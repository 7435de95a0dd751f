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

Each lock's header records that command with its options, as uv writes it (`#    uv pip compile
--universal --python-version 3.11 --generate-hashes --output-file requirements.txt requirements.in`):
Dependabot's `uv` ecosystem recompiles a lock with the `--universal`, `--python-version` and
`--generate-hashes` it reads there (dependabot-core uv/lib/dependabot/uv/file_updater/
compile_file_updater.rb, uv_compile_options_from_compiled_file; `--python-version` since
dependabot/dependabot-core#13812), and keeps the header as it was.

Making a lock needs the package index; checking one does not. Below uv's header `make lock` writes two
stamps: the sha256 of its inputs' requirement lines (the .in files, comments and blank lines aside), and
the sha256 of the lock itself as uv wrote it (every line but the two stamps). `check` recomputes both:
an input changed since (`make lock` is due), or a lock changed since (a pin, hash, marker or line edited,
added or removed: by hand, or by an update bot, which rewrites the pins but keeps the header, stamps
included) fails. A digest cannot tell a correct edit from a wrong one offline, so every edit goes
through `make lock`, which keeps the versions the lock names where they exist and the ranges allow and
writes their hashes. `check` also checks what a digest cannot: the header's command, every line pinned
with `==` and hashed, every input requirement pinned at a version its range allows, and the dev lock
running the app's lock's versions.
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
# uv's options for every lock (the header records them, for `make lock` and for Dependabot).
COMPILE_OPTIONS = ("--universal", "--python-version", PYTHON_VERSION, "--generate-hashes")
STAMP = "# inputs-sha256:"
STAMP_RE = re.compile(r"^# inputs-sha256: ([0-9a-f]{64})\b", re.MULTILINE)
LOCK_STAMP = "# lock-sha256:"
LOCK_STAMP_RE = re.compile(r"^# lock-sha256: ([0-9a-f]{64})\b", re.MULTILINE)
# pip's own rule: a comment starts a line, or follows whitespace.
COMMENT_RE = re.compile(r"(^|\s+)#.*$")
OPTION_WITH_FILE_RE = re.compile(r"^(-r|--requirement|-c|--constraint)[\s=]+(\S+)$")
FIX = "run `make lock` (docs/deploy/upgrading.md)"
EDITED_FIX = (
    "run `make lock` and commit what it writes: it keeps the versions the lock now names where they exist "
    "and the ranges allow, and writes their hashes, the markers of every platform and the stamps. On an "
    "update bot's pull request (Dependabot keeps the header and its stamps), run it on that branch and "
    "push (docs/deploy/upgrading.md)"
)


@dataclass(frozen=True)
class Lock:
    source: str  # the input a person edits
    output: str  # the generated lock

    @property
    def command(self) -> str:
        """The command the lock is made with, as its header records it (--output-file before the input:
        Dependabot finds a lock's input by the name that ends that line)."""
        return " ".join(["uv pip compile", *COMPILE_OPTIONS, "--output-file", self.output, self.source])


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


def lock_digest(text: str) -> str:
    """The sha256 of a lock as `make lock` wrote it: every line but its two stamps (line endings aside)."""
    kept = [line for line in text.splitlines() if not line.startswith((STAMP, LOCK_STAMP))]
    return hashlib.sha256(("\n".join(kept) + "\n").encode()).hexdigest()


def header(text: str) -> list[str]:
    """The comment lines a lock starts with (uv's header and the stamps)."""
    lines: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


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
        lock_stamp = LOCK_STAMP_RE.search(text)
        if lock_stamp is None:
            found.append(f"{lock.output} has no '{LOCK_STAMP}' line: it was not made by `make lock`; run it")
        elif lock_stamp.group(1) != lock_digest(text):
            found.append(
                f"{lock.output} was changed after `make lock` wrote it (its lines no longer match its "
                f"'{LOCK_STAMP}'; pip would install it only if every pin and hash were right, and nothing "
                f"offline can tell): {EDITED_FIX}"
            )
        if f"#    {lock.command}" not in header(text):
            found.append(
                f"{lock.output}'s header does not record the command it is made with "
                f"(`{lock.command}`), which Dependabot reads its options from: {FIX}"
            )
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
            *COMPILE_OPTIONS,
            # What the header records: the command itself (uv would also record --quiet and --upgrade*).
            "--custom-compile-command",
            lock.command,
            "--output-file",
            lock.output,
            lock.source,
        ]
        if upgrade:
            argv.append("--upgrade")
        for package in upgrade_packages:
            argv += ["--upgrade-package", package]
        print(f"==> {lock.source} -> {lock.output}", flush=True)
        subprocess.run(argv, cwd=root, check=True)
        stamp(root, lock)


def stamp(root: Path, lock: Lock) -> None:
    """Write the inputs' digest and the lock's own below uv's header (the header's own comment lines)."""
    output = root / lock.output
    text = output.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith((STAMP, LOCK_STAMP))]
    end = len(header("\n".join(lines)))
    notes = [
        f"{STAMP} {inputs_digest(root, lock)} (written by `make lock`: devtools/locks.py)",
        f"{LOCK_STAMP} {lock_digest(text)} (checked by `make test`: edit no line below by hand)",
    ]
    lines[end:end] = notes
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
