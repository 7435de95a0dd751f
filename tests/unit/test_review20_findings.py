"""Review of issue 20 (docs site, API description, locked dependencies): each test states what the
issue or a page promises and fails on main as of 097581c.

Issue 20 lines quoted in the docstrings:
- "the canonical format reference ... so it cannot drift" / "every README section of today lives on
  exactly one docs page" (the docs must say what the code does);
- "An OpenAPI 3.1 description ... per format the request bodies ... rendered in the docs";
- "Locked, reproducible dependencies ... CI fails when the lock is stale; a Dependabot (or Renovate)
  configuration for pip, npm and GitHub Actions".
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import locks
from shared.delivery.deadletters import TENANT_WIDE

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DESCRIPTION = ROOT / "openapi" / "bridge.openapi.json"


def page(relative: str) -> str:
    return (DOCS / relative).read_text(encoding="utf-8")


# ---- the docs say what the code does -------------------------------------------------------------


@pytest.mark.parametrize("reason", sorted(TENANT_WIDE))
def test_graphs_answers_table_has_a_row_for_every_tenant_wide_reason(reason: str) -> None:
    """docs/delivery.md "Graph's answers" lists the learning API's refusals the bridge recognises, with
    the reason and what to do. shared/delivery/deadletters.py TENANT_WIDE (and shared/graph/errors.py:34,
    :37) add providerNotRegistered and appRoleMissing (merged in da7ddac); the table (delivery.md:121-127)
    and the "tenant-wide" row of the Failures table (delivery.md:108) name only the first three."""
    delivery = page("delivery.md")
    answers = delivery.split("## Graph's answers", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"^\|[^\n]*\| `{reason}` \|", answers, re.MULTILINE), reason


@pytest.mark.parametrize("reason", sorted(TENANT_WIDE))
def test_the_deploy_pages_alerts_paragraph_names_every_reason_the_tenant_wide_alert_fires_on(
    reason: str,
) -> None:
    """docs/deploy/index.md:214-215 says the tenant-wide alert fires for `tenantNotLicensed`,
    `providerNotEnabled`, `contentOfAnotherProvider`; infra/modules/alerts.bicep:72 (tenantWideReasons)
    also fires on providerNotRegistered and appRoleMissing."""
    bicep = (ROOT / "infra" / "modules" / "alerts.bicep").read_text(encoding="utf-8")
    assert f'"{reason}"' in bicep
    deploy = page("deploy/index.md")
    alerts = deploy[deploy.index("Alerts fire on") :]
    alerts = alerts[: alerts.index("Every alert goes to one action group")]
    assert f"`{reason}`" in alerts, reason


@pytest.mark.parametrize("reason", sorted(TENANT_WIDE))
def test_the_status_row_names_every_tenant_wide_reason_status_prints(reason: str) -> None:
    """docs/operate.md:27 (the `status` row): "for each tenant-wide reason present (`tenantNotLicensed`,
    `providerNotEnabled`, `contentOfAnotherProvider`) what fixes it". shared/cli/operations.py:109-110
    prints a fix for every reason of TENANT_WIDE, providerNotRegistered and appRoleMissing included."""
    row = next(line for line in page("operate.md").splitlines() if line.startswith("| `status"))
    assert f"`{reason}`" in row, reason


def test_the_deploy_page_counts_the_alerts_infra_declares() -> None:
    """docs/deploy/index.md:7: "... the Graph application permissions, five alerts and a workbook".
    infra/modules/alerts.bicep declares six alert rules (deadLetters :35, tenantWide :74, failureRate
    :108, silence :139, sourceSilence :178 (one per source), unconfigured :226)."""
    bicep = (ROOT / "infra" / "modules" / "alerts.bicep").read_text(encoding="utf-8")
    rules = re.findall(r"^resource \w+ 'Microsoft\.Insights/scheduledQueryRules@", bicep, re.MULTILINE)
    words = {5: "five", 6: "six", 7: "seven"}
    assert f"{words.get(len(rules), str(len(rules)))} alerts" in page("deploy/index.md")


def test_the_failures_table_names_every_permanent_reason_classify_gives() -> None:
    """docs/delivery.md:109 (permanent): "any other Graph 400 (`graphRejected`) or 403
    (`graphForbidden`)". shared/delivery/upsert.py:815-816 dead-letters a Graph 404 as `graphNotFound`
    (and any other 4xx as graphRejected), a reason no page names."""
    source = (ROOT / "shared" / "delivery" / "upsert.py").read_text(encoding="utf-8")
    permanent = set(re.findall(r'PermanentFailure\("([a-zA-Z]+)"', source))
    everything = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    assert not {reason for reason in permanent if f"`{reason}`" not in everything}


def test_the_trace_row_does_not_say_the_graph_writes_are_not_stored() -> None:
    """docs/operate.md:12 (the `trace` row): "The individual Graph writes and their answers are not
    stored (the logs and traces have them), so it shows the last state written, not each write." Since
    cbb7b58/da7ddac shared/cli/trace.py:7,93 prints every Graph write of the record with Graph's answer
    (the row keeps the last WRITE_HISTORY)."""
    trace = (ROOT / "shared" / "cli" / "trace.py").read_text(encoding="utf-8")
    assert "graph_writes" in trace
    assert "Graph writes and their answers are not stored" not in page("operate.md")


def test_no_file_points_to_a_readme_section_that_moved_to_the_docs() -> None:
    """Issue 20: the README shrinks to a map; pointers to its old sections name the docs page (commit
    df2759a did so for docstrings and infra/). requirements.in:3 still says 'see the README's
    "Upgrading dependencies"', a section the README no longer has (docs/deploy/upgrading.md has it)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#+ (.+)$", readme, re.MULTILINE))
    stale = []
    for path in [*ROOT.glob("requirements*.in"), ROOT / "Makefile", *(ROOT / "shared").rglob("*.py")]:
        for name in re.findall(r'README(?:\.md)?\'s "([^"]+)"', path.read_text(encoding="utf-8")):
            if name not in headings:
                stale.append(f"{path.relative_to(ROOT)}: {name}")
    assert not stale


# ---- the API description as the docs render it ---------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env=environment,
        check=True,
    )
    return out


def request_body_examples() -> Iterator[tuple[str, dict[str, Any]]]:
    description = json.loads(DESCRIPTION.read_text(encoding="utf-8"))
    for body in description["components"]["requestBodies"].values():
        for media in body.get("content", {}).values():
            yield from media.get("examples", {}).items()


EXTERNAL = [(name, example) for name, example in request_body_examples() if "externalValue" in example]


def test_the_description_has_vendor_examples_to_check() -> None:
    assert len(EXTERNAL) >= 10


@pytest.mark.parametrize(("name", "example"), EXTERNAL, ids=[name for name, _ in EXTERNAL])
def test_every_vendor_payload_example_is_rendered_on_the_http_api_page(
    site: Path, name: str, example: dict[str, Any]
) -> None:
    """Issue 20: "per format the request bodies ... rendered in the docs"; docs/reference/http-api.md:
    "with this project's fixtures as examples ... The description as the docs render it". The vendor
    examples are `externalValue` references (openapi/bridge.openapi.json requestBodies.WebhookBody),
    which neoteroi-mkdocs does not render: the page shows only the two inline generic examples."""
    value = json.loads((DESCRIPTION.parent / example["externalValue"]).read_text(encoding="utf-8"))
    text = html.unescape(
        re.sub(r"<[^>]+>", " ", (site / "reference" / "http-api" / "index.html").read_text())
    )
    compact = re.sub(r"\s+", "", json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    assert compact in re.sub(r"\s+", "", text), f"{name} ({example.get('summary')}) is not on the page"


@pytest.mark.parametrize(("name", "example"), EXTERNAL, ids=[name for name, _ in EXTERNAL])
def test_every_external_example_resolves_where_the_site_publishes_the_description(
    site: Path, name: str, example: dict[str, Any]
) -> None:
    """docs/reference/http-api.md publishes the file "beside this page for tools" (site
    /openapi/bridge.openapi.json). Its externalValue references (`../tests/fixtures/...`) resolve, for a
    tool reading it there, to /tests/fixtures/..., which the site does not contain: every vendor example
    is a 404 for Swagger UI or Redocly pointed at the published description."""
    published = site / "openapi" / "bridge.openapi.json"
    assert published.exists()
    target = (published.parent / example["externalValue"]).resolve()
    assert target.is_relative_to(site.resolve()), f"{name}: {example['externalValue']} leaves the site"
    assert target.exists(), f"{name}: {example['externalValue']}"


# ---- the locks -------------------------------------------------------------------------------------

LOCK_FILES = [
    "requirements.in",
    "requirements-dev.in",
    "requirements-infra.in",
    "requirements.txt",
    "requirements-dev.txt",
    "requirements-infra.txt",
]


def edit_pin_version(path: Path, name: str, version: str) -> None:
    text = path.read_text(encoding="utf-8")
    edited, count = re.subn(rf"^{re.escape(name)}==[^ ;\\]+", f"{name}=={version}", text, flags=re.MULTILINE)
    assert count == 1, name
    path.write_text(edited, encoding="utf-8")


def drop_entry(path: Path, name: str) -> None:
    """Remove `name==...` and its continuation lines (hashes, `# via`)."""
    kept: list[str] = []
    skipping = False
    found = False
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith(f"{name}=="):
            skipping = found = True
            continue
        if skipping and line[:1].isspace():
            continue
        skipping = False
        kept.append(line)
    assert found, name
    path.write_text("".join(kept), encoding="utf-8")


def drop_first_hash(path: Path, name: str) -> None:
    text = path.read_text(encoding="utf-8")
    edited, count = re.subn(
        rf"(^{re.escape(name)}==[^\n]*\n)    --hash=sha256:[0-9a-f]{{64}} \\\n",
        r"\1",
        text,
        flags=re.MULTILINE,
    )
    assert count == 1, name
    path.write_text(edited, encoding="utf-8")


def pin_edited_in_both_locks(root: Path) -> None:
    # The same new version in the app's and the dev lock, hashes left as they were (an edit by hand, or
    # a bot that updates the two files alike): pip --require-hashes then refuses the install.
    for name in ("requirements.txt", "requirements-dev.txt"):
        edit_pin_version(root / name, "msgraph-sdk", "1.66.0")


def platform_pin_dropped(root: Path) -> None:
    # What a compile without --universal on Linux does (.github/dependabot.yml claims the check reports
    # "markers of another platform dropped").
    for name in ("requirements.txt", "requirements-dev.txt"):
        drop_entry(root / name, "colorama")


EDITS: dict[str, Callable[[Path], None]] = {
    "a pin edited by hand in both locks": pin_edited_in_both_locks,
    "a dev-only pin edited by hand": lambda root: edit_pin_version(
        root / "requirements-dev.txt", "pytest", "8.3.0"
    ),
    "a transitive pin of checkov's lock edited by hand": lambda root: edit_pin_version(
        root / "requirements-infra.txt", "boto3", "1.0.0"
    ),
    # aiohttp needs yarl: `pip install --require-hashes -r requirements.txt` fails without its pin.
    "a transitive pin removed from the app's lock": lambda root: drop_entry(
        root / "requirements.txt", "yarl"
    ),
    "a platform-marked pin dropped from both locks": platform_pin_dropped,
    "one of a pin's hashes removed": lambda root: drop_first_hash(
        root / "requirements.txt", "aiohappyeyeballs"
    ),
}


@pytest.fixture
def lock_copy(tmp_path: Path) -> Path:
    for name in LOCK_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    assert locks.problems(tmp_path) == []
    return tmp_path


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_the_lock_check_refuses_a_lock_that_make_lock_did_not_write(lock_copy: Path, edit: str) -> None:
    """Issue 20: "CI fails when the lock is stale"; devtools/locks.py's docstring: `check` "exit 1 on a
    stale lock"; .github/dependabot.yml:6 says it reports "markers of another platform dropped". The
    stamp is a digest of the inputs only (devtools/locks.py inputs_digest), and the other checks look
    at ranges and at the app's pins being in the dev lock: a lock edited after `make lock` passes, and
    `make test` says "every package pinned and hashed" while pip would refuse it or install less."""
    EDITS[edit](lock_copy)
    assert locks.problems(lock_copy), f"{edit}: devtools.locks check passes"


@pytest.mark.parametrize("lock", [lock.output for lock in locks.LOCKS])
def test_each_lock_header_records_the_options_a_bot_must_compile_it_with(lock: str) -> None:
    """.github/dependabot.yml: "Dependabot reads the requirements*.in inputs and recompiles the
    requirements*.txt locks it finds generated from them (it recognises uv's header)". The header says
    only `make lock` (devtools/locks.py: --custom-compile-command). Dependabot's pip ecosystem re-runs
    pip-compile with options guessed from the file's content (dependabot-core
    python/lib/dependabot/python/pip_compile_options_parser.rb: hashes, annotations; never --universal
    or a Python version), and its uv ecosystem reads `--universal` / `--python-version` from the header
    command (dependabot/dependabot-core#13812, fixing #12047): from this header neither can recompile the
    lock for every platform and Python 3.11."""
    header = [
        line for line in (ROOT / lock).read_text(encoding="utf-8").splitlines()[:4] if line.startswith("#")
    ]
    command = " ".join(header)
    assert "--universal" in command, header
    assert "--python-version 3.11" in command, header
