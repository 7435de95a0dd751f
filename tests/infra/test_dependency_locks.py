"""The locks are what gets installed: requirements.txt (Azure's remote build runs `pip install -r
requirements.txt`), requirements-dev.txt (.venv) and requirements-infra.txt (.venv-checkov), each
generated from its requirements*.in by `make lock` (devtools/locks.py). A release upstream changes
nothing without a commit that changes a lock."""

from __future__ import annotations

import ast
import re
import shutil
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from devtools import check, locks

ROOT = Path(__file__).resolve().parents[2]
APP_SOURCES = [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py"))]
LOCAL_PACKAGES = {"shared", "function_app", "__future__"}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The inputs and locks alone, in a folder of their own, to be edited."""
    for lock in locks.LOCKS:
        shutil.copy(ROOT / lock.source, tmp_path / lock.source)
        shutil.copy(ROOT / lock.output, tmp_path / lock.output)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("lock", locks.LOCKS, ids=lambda lock: lock.output)
def test_every_package_of_a_lock_is_pinned_exactly_with_its_sha256_hashes(lock: locks.Lock) -> None:
    text = (ROOT / lock.output).read_text(encoding="utf-8")
    pins = locks.pins(text)
    assert len(pins) > 10
    for pin in pins:
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!]*", pin.version), f"not pinned with ==: {pin.line[:100]}"
        assert pin.hashes, f"{pin.name}=={pin.version} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin.hashes), pin.name
    # Nothing that pip would install from elsewhere or without a hash: no editable, URL or index lines.
    assert not re.search(r"^\s*(-e|--editable|--index-url|--extra-index-url|--find-links|-f )", text, re.M)
    assert not re.search(r"@\s*(https?|file|git\+)", text)
    assert locks.STAMP_RE.search(text), "no inputs-sha256 line: not made by `make lock`"


def test_the_locks_match_their_inputs_and_the_dev_lock_runs_the_apps_versions() -> None:
    assert locks.problems(ROOT) == []


def test_every_requirement_of_an_input_is_pinned_in_its_lock_within_its_range() -> None:
    for lock in locks.LOCKS:
        text = (ROOT / lock.output).read_text(encoding="utf-8")
        pinned = {pin.name: pin.version for pin in locks.pins(text)}
        for _, requirement in locks.requirements_of(ROOT / lock.source):
            version = pinned[canonicalize_name(requirement.name)]
            assert requirement.specifier.contains(version, prereleases=True), (lock.output, requirement)


def test_the_dev_lock_takes_the_apps_ranges_and_is_constrained_by_its_lock() -> None:
    referenced = locks.referenced_files(ROOT / locks.DEV.source)
    assert ("-r", ROOT / "requirements.in") in referenced
    assert ("-c", ROOT / "requirements.txt") in referenced
    # The infra lock is checkov's own: it must not constrain or be constrained by the app's.
    assert locks.referenced_files(ROOT / locks.INFRA.source) == []


def test_a_changed_range_makes_its_lock_and_the_dev_lock_stale(copy: Path) -> None:
    edit(copy / "requirements.in", "tqdm>=4.66,<5", "tqdm>=4.66,<4.67")
    found = locks.problems(copy)
    assert any(p.startswith("requirements.txt is stale") for p in found), found
    assert any(p.startswith("requirements-dev.txt is stale") for p in found), found
    out_of_range = [p for p in found if "pins tqdm==" in p]
    assert len(out_of_range) == 2, found  # the app's lock and the dev lock, both naming the file that says so
    assert all("outside requirements.in's '<4.67,>=4.66'" in p for p in out_of_range), found
    assert not any(p.startswith("requirements-infra.txt") for p in found), found


def test_a_new_requirement_is_reported_until_it_is_locked(copy: Path) -> None:
    text = (copy / "requirements-dev.in").read_text(encoding="utf-8")
    (copy / "requirements-dev.in").write_text(text + "some-new-tool>=1\n", encoding="utf-8")
    found = locks.problems(copy)
    assert any(p.startswith("requirements-dev.txt is stale") for p in found), found
    assert any("does not pin some-new-tool" in p for p in found), found


def test_a_comment_or_blank_line_in_an_input_needs_no_new_lock(copy: Path) -> None:
    text = (copy / "requirements.in").read_text(encoding="utf-8")
    (copy / "requirements.in").write_text("# a note for the next reader\n\n" + text, encoding="utf-8")
    edit(copy / "requirements.in", "httpx>=0.27,<1", "httpx>=0.27,<1   # the Graph client's transport")
    assert locks.problems(copy) == []


def test_the_apps_lock_updated_alone_is_reported_as_edited_and_the_dev_lock_left_behind(copy: Path) -> None:
    """An update of requirements.txt without `make lock` (by hand, or a bot that recompiles one file)."""
    runtime = locks.pins((copy / "requirements.txt").read_text(encoding="utf-8"))
    tqdm = next(pin for pin in runtime if pin.name == "tqdm")
    edit(copy / "requirements.txt", f"tqdm=={tqdm.version}", "tqdm==4.99.0")
    found = locks.problems(copy)
    assert "requirements.txt was changed after `make lock` wrote it" in found[0], found
    assert found[1:] == [
        f"requirements-dev.txt runs tqdm at {tqdm.version}, the app's lock (requirements.txt) at 4.99.0: "
        f"{locks.FIX}"
    ]


def _as_a_bot_updates_it(path: Path, name: str, version: str) -> None:
    """What Dependabot's uv ecosystem writes (dependabot-core uv/lib/dependabot/uv/file_updater/
    compile_file_updater.rb): the pin recompiled with its new hashes, the header kept as it was
    (replace_header_with_original), stamps included."""
    text = path.read_text(encoding="utf-8")
    pin = next(pin for pin in locks.pins(text) if pin.name == name)
    start = text.index(f"\n{name}=={pin.version}") + 1
    end = text.index("\n    # via", start)
    entry = f"{name}=={version} \\\n    --hash=sha256:{'0' * 64} \\\n    --hash=sha256:{'1' * 64}"
    path.write_text(text[:start] + entry + text[end:], encoding="utf-8")


def test_a_bots_update_of_both_locks_is_refused_with_the_command_that_fixes_it(copy: Path) -> None:
    """An update bot's pull request: the same new pin in both locks, new hashes, the .in files and the
    headers untouched. Nothing offline can tell its hashes from wrong ones: `make lock` on its branch
    writes them from the index (keeping the bot's version) and the stamps, and the check passes."""
    runtime = locks.pins((copy / "requirements.txt").read_text(encoding="utf-8"))
    tqdm = next(pin for pin in runtime if pin.name == "tqdm")
    for name in ("requirements.txt", "requirements-dev.txt"):
        _as_a_bot_updates_it(copy / name, "tqdm", "4.99.0")
    assert tqdm.version != "4.99.0"
    found = locks.problems(copy)
    assert len(found) == 2, found
    for name, problem in zip(("requirements.txt", "requirements-dev.txt"), found, strict=True):
        assert problem.startswith(f"{name} was changed after `make lock` wrote it"), problem
        assert problem.endswith(locks.EDITED_FIX), problem
        assert "run it on that branch and push" in problem


def test_each_lock_header_records_the_command_with_the_options_dependabot_reads(copy: Path) -> None:
    """Dependabot's uv ecosystem recompiles a lock with the options it finds in the lock's text
    (compile_file_updater.rb uv_compile_options_from_compiled_file: `--universal` and `--generate-hashes`
    by inclusion, `--python-version` by PYTHON_VERSION_REGEX, dependabot/dependabot-core#13812) and finds
    the input by the name that ends the `--output-file` line (output_file_regex)."""
    for lock in locks.LOCKS:
        text = (ROOT / lock.output).read_text(encoding="utf-8")
        assert f"#    {lock.command}" in locks.header(text)
        assert "--universal" in text
        assert "--hash=sha256:" in text
        version = re.search(r"--python-version[=\s]+(?P<version>\d+\.\d+(?:\.\d+)?)", text)
        assert version is not None
        assert version["version"] == locks.PYTHON_VERSION
        assert re.search(rf"--output-file[=\s]+.*\s{re.escape(lock.source)}\s*$", text, re.MULTILINE)
    edit(copy / "requirements.txt", locks.RUNTIME.command, "make lock")
    found = locks.problems(copy)
    assert any(p.startswith("requirements.txt's header does not record the command") for p in found), found


def test_a_lock_checked_out_with_crlf_line_endings_still_matches_its_stamp(copy: Path) -> None:
    for lock in locks.LOCKS:
        text = (copy / lock.output).read_text(encoding="utf-8")
        (copy / lock.output).write_bytes(text.replace("\n", "\r\n").encode())
    assert locks.problems(copy) == []


def test_an_unpinned_or_unhashed_line_is_reported(copy: Path) -> None:
    with (copy / "requirements-infra.txt").open("a", encoding="utf-8") as out:
        out.write("requests>=2\nsix==1.17.0\n")
    found = locks.problems(copy)
    assert any("not an exact pin: requests>=2" in p for p in found), found
    assert any("six==1.17.0 has no --hash" in p for p in found), found


def test_a_line_of_an_input_that_is_no_requirement_is_reported(copy: Path) -> None:
    edit(copy / "requirements-infra.in", "checkov==3.3.30", "checkov = 3.3.30")
    assert any(p.startswith("requirements-infra.in (or a file") for p in locks.problems(copy))


def test_a_lock_not_made_by_make_lock_is_reported(copy: Path) -> None:
    lines = (copy / "requirements.txt").read_text(encoding="utf-8").splitlines()
    stripped = [line for line in lines if not line.startswith((locks.STAMP, locks.LOCK_STAMP))]
    (copy / "requirements.txt").write_text("\n".join(stripped) + "\n", encoding="utf-8")
    found = locks.problems(copy)
    assert any("has no '# inputs-sha256:' line" in p for p in found), found
    assert any("has no '# lock-sha256:' line" in p for p in found), found


def test_make_test_checks_the_locks_first() -> None:
    assert check.STEPS[0] == ("locks", [sys.executable, "-m", "devtools.locks", "check"])


@cache
def _file_owners() -> dict[Path, str]:
    owners: dict[Path, str] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        for file in dist.files or ():
            if file.suffix == ".py":
                owners[Path(str(dist.locate_file(file))).resolve()] = name
    return owners


def _distribution_of(module: str) -> str | None:
    """The installed distribution whose files hold the module (deepest package that has a file, so
    namespace packages such as azure.* resolve to the distribution that fills them)."""
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        for base in map(Path, sys.path):
            folder = base.joinpath(*parts[:depth])
            for candidate in (folder / "__init__.py", folder.with_name(parts[depth - 1] + ".py")):
                owner = _file_owners().get(candidate.resolve())
                if owner is not None:
                    return owner
    return None


def _runtime_imports() -> dict[str, set[str]]:
    """Third-party modules the deployed code imports, each with the files that import it."""
    found: dict[str, set[str]] = {}
    for path in APP_SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from opentelemetry import trace`: the submodule names the distribution (opentelemetry-api).
                names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL_PACKAGES:
                    found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_requirements_txt_holds_the_distribution_of_every_runtime_import() -> None:
    """What function_app.py and shared/ import must be installed by Azure's build: a package that only
    the dev lock brings in would pass every test here and fail on the first cold start."""
    runtime = {pin.name for pin in locks.pins((ROOT / "requirements.txt").read_text(encoding="utf-8"))}
    imports = _runtime_imports()
    assert "msgraph.graph_service_client" in imports  # the walk sees the app's imports
    resolved: dict[str, str] = {}
    for module in imports:
        owner = _distribution_of(module)
        if owner is not None:
            resolved[module] = owner
    missing_owner = {
        m: sorted(files)
        for m, files in imports.items()
        if m not in resolved and not any(other.startswith(m + ".") and other in resolved for other in imports)
    }
    assert not missing_owner, f"imports no installed distribution provides: {missing_owner}"
    outside = {m: owner for m, owner in resolved.items() if owner not in runtime}
    assert not outside, f"imported by the app but not in requirements.txt: {outside}"
    for distribution in ("msgraph-sdk", "azure-functions", "azure-data-tables", "pyjwt", "standardwebhooks"):
        assert distribution in resolved.values()


def test_dependabot_proposes_updates_for_the_python_locks_npm_and_the_workflows_actions() -> None:
    # The locks are `uv pip compile` files: the `uv` ecosystem recompiles them with uv and the options
    # of their header; `pip`'s re-runs pip-compile with options guessed from the content (never
    # --universal nor a Python version: dependabot-core python/lib/dependabot/python/
    # pip_compile_options_parser.rb).
    config = (ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8")
    ecosystems = re.findall(r"^\s*-\s*package-ecosystem:\s*\"?([\w-]+)\"?", config, re.M)
    assert sorted(ecosystems) == ["github-actions", "npm", "uv"]
    assert "uses: actions/" in (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")


def _make_rules() -> dict[str, tuple[str, list[str]]]:
    """Each Makefile target: its prerequisites and its recipe lines."""
    rules: dict[str, tuple[str, list[str]]] = {}
    target = ""
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("\t") and target:
            rules[target][1].append(line.strip())
        elif re.match(r"^[\w$().\-/]+:(?!=)", line):
            target, _, prerequisites = line.partition(":")
            rules[target] = (prerequisites.strip(), [])
    return rules


def test_make_installs_every_venv_from_its_lock_with_hashes_checked() -> None:
    rules = _make_rules()
    installs = [
        line for _, recipe in rules.values() for line in recipe if "pip install" in line and " -r " in line
    ]
    assert len(installs) == 2
    assert all("--require-hashes -r requirements-" in line for line in installs), installs
    assert rules["lock"][1] == ["$(PY) -m devtools.locks compile $(LOCK_ARGS)"]


def test_make_run_and_bench_do_not_build_checkovs_environment_and_make_test_does() -> None:
    rules = _make_rules()
    for target in ("run", "bench", "lint", "typecheck", "lock"):
        assert "CHECKOV_VENV" not in rules[target][0], target
        assert "deps" not in rules[target][0], target
    assert rules["test"][0] == "deps"
    assert "$(CHECKOV_VENV)/.installed" in rules["deps"][0]
