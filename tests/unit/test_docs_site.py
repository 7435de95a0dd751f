"""The docs site (docs/, mkdocs.yml) took over the README's content (issue 20): every section of the old
README lives on exactly one page, the README is a short map, and the generated pages follow the code.
`make test` also builds the site with `mkdocs build --strict` (devtools/docs/build.py): broken links and
anchors, pages left out of the nav and missing snippets fail there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devtools.docs import schema_reference
from shared.sources.registry import FORMATS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

#: Every `##` and `###` heading of README.md before the docs site (commit 9536b4d), in its order.
README_HEADINGS_BEFORE = [
    "Two commands",
    "Sending events: the generic format",
    "Answers",
    "Assigned courses",
    "The API description (OpenAPI 3.1)",
    "Connect your platform",
    "Rotating a source's secret",
    "Backpressure",
    "The dev host: the real host's rules",
    "Proof by fuzzing",
    "From the queue to Graph: nothing lost, nothing duplicated",
    "Configuration",
    "Operators' CLI",
    "Local Graph sandbox",
    "Layout",
    "Performance",
    "Cold start",
    "Deploy",
    "Upgrading dependencies",
]
#: Headings renamed on the way (old -> new); none so far: each section kept its name.
RENAMED: dict[str, str] = {}

HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def headings(page: Path) -> list[str]:
    """A page's Markdown headings, code blocks left out (a `# comment` in a shell block is no heading)."""
    found: list[str] = []
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.append(match.group(1))
    return found


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def nav_pages() -> set[str]:
    """The pages mkdocs.yml's nav names (read as text: the file holds a !!python/name tag)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:", 1)[1]
    return set(re.findall(r"([\w./-]+\.md)\s*$", text, re.MULTILINE))


@pytest.mark.parametrize("old", README_HEADINGS_BEFORE)
def test_every_section_of_the_old_readme_is_a_heading_on_exactly_one_docs_page(old: str) -> None:
    wanted = RENAMED.get(old, old)
    holders = [page.relative_to(DOCS).as_posix() for page in pages() if wanted in headings(page)]
    assert len(holders) == 1, f"{wanted!r} is a heading on {holders or 'no page'}"


def test_no_page_holds_a_section_twice() -> None:
    """A section pasted twice (a slip while moving text) would pass strict mode: MkDocs numbers the
    second heading's anchor."""
    for page in pages():
        found = headings(page)
        assert len(found) == len(set(found)), (page.name, sorted({h for h in found if found.count(h) > 1}))


def test_the_readme_is_a_short_map_of_the_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 10 * 1024
    assert "make run" in readme
    assert "make test" in readme
    linked = set(re.findall(r"\]\(docs/([\w./-]+\.md)\)", readme))
    assert linked == nav_pages(), "the README's map names every page of the site, and no other"


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    assert {page.relative_to(DOCS).as_posix() for page in pages()} == nav_pages()


def test_a_page_with_a_mermaid_diagram_says_it_loads_from_a_cdn_and_keeps_a_text_version() -> None:
    """Material for MkDocs loads Mermaid from unpkg.com: offline the diagram shows as source text."""
    with_diagrams = [page for page in pages() if "```mermaid" in page.read_text(encoding="utf-8")]
    assert with_diagrams  # docs/architecture.md
    for page in with_diagrams:
        text = page.read_text(encoding="utf-8")
        assert "unpkg.com" in text, page
        assert re.search(r"^```\n", text, re.MULTILINE), f"{page}: no plain-text version of the diagram"


def test_every_format_has_a_page_whose_options_table_is_rendered_from_its_options_model() -> None:
    for name in FORMATS:
        page = DOCS / "connect" / f"{name}.md"
        assert f"<!-- format-options: {name} -->" in page.read_text(encoding="utf-8"), page
        options = schema_reference.options_schema(name)["properties"]
        rendered = schema_reference.render_options(name)
        assert all(f"| `{option}` |" in rendered for option in options), name


def test_the_canonical_reference_lists_every_field_of_the_schema_with_its_bounds() -> None:
    schema = schema_reference.load_schema()
    rendered = schema_reference.render(schema)
    objects = [schema, *(d for d in schema["$defs"].values() if d.get("type") == "object")]
    for definition in objects:
        for field in definition["properties"]:
            assert f"| `{field}` |" in rendered, field
    assert "| `eventId` | `string` (1-256 characters;" in rendered
    assert "`integer` (0 to 100) or `null`" in rendered
    for name in schema["$defs"]:
        assert f"## {name}" in rendered, name
    page = (DOCS / "reference" / "canonical-event.md").read_text(encoding="utf-8")
    assert page.count(schema_reference.MARKER) == 1


def test_the_generic_pages_field_table_names_exactly_the_schemas_fields() -> None:
    """The hand-written meanings on the generic format's page cannot gain or lose a field unnoticed."""
    page = (DOCS / "connect" / "generic.md").read_text(encoding="utf-8")
    table = page.split("| field | required | meaning |", 1)[1].split("\n\n", 1)[0]
    described = re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", table, re.MULTILINE)
    fields = {name for pair in described for name in pair if name}
    assert fields == set(schema_reference.load_schema()["properties"])


def cli_commands() -> list[str]:
    """The operators' CLI's commands as its parser has them (`deadletters list`, `provider show`, ...)."""
    import argparse

    from shared.cli.__main__ import build_parser

    def walk(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
        found: list[str] = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found += [f"{prefix}{name}", *walk(child, f"{prefix}{name} ")]
        return found

    return walk(build_parser(), "")


def test_operate_lists_every_cli_command_and_shows_each_one_run() -> None:
    page = (DOCS / "operate.md").read_text(encoding="utf-8")
    commands = cli_commands()
    assert {"translate", "send", "deadletters list", "catalog push", "provider register", "doctor"} <= set(
        commands
    )
    for command in commands:
        top = command.split(" ", 1)[0]
        assert re.search(rf"^\| `{re.escape(top)}\b", page, re.MULTILINE), (
            f"{top} is not in the command table"
        )
        assert f"shared.cli {top}" in page, f"no example runs {top}"


def test_every_setting_the_code_reads_is_documented() -> None:
    """Each BRIDGE_* name in shared/ (and AZURE_CLIENT_ID) appears on some page; the app's own settings
    on the configuration page."""
    names = {
        name
        for path in (ROOT / "shared").rglob("*.py")
        for name in re.findall(r"\b(BRIDGE_[A-Z_]*[A-Z]|AZURE_CLIENT_ID)\b", path.read_text(encoding="utf-8"))
        if name not in {"BRIDGE_SOURCE_GENERIC_SECRET"}  # BRIDGE_SOURCE_<NAME>_SECRET's local example
    }
    everything = "\n".join(page.read_text(encoding="utf-8") for page in pages())
    assert not {name for name in names if not re.search(rf"\b{name}\b", everything)}
    settings = (ROOT / "shared" / "config" / "settings.py").read_text(encoding="utf-8")
    configuration = (DOCS / "deploy" / "configuration.md").read_text(encoding="utf-8")
    for name in set(re.findall(r'"(BRIDGE_[A-Z_]+|AZURE_CLIENT_ID)"', settings)):
        assert f"`{name}`" in configuration, name


class _Page:
    """What the hook reads of an mkdocs Page: its source path."""

    def __init__(self, src_uri: str) -> None:
        self.file = type("File", (), {"src_uri": src_uri})()


def test_the_build_hook_fills_the_reference_and_the_options_tables_and_fails_when_a_marker_is_lost() -> None:
    from mkdocs.exceptions import PluginError

    from devtools.docs import hooks

    def run(markdown: str, src_uri: str) -> str:
        return hooks.on_page_markdown(markdown, page=_Page(src_uri), config=None, files=None)  # type: ignore[arg-type]

    reference = run(f"# Reference\n\n{schema_reference.MARKER}\n", hooks.REFERENCE_PAGE)
    assert "## CanonicalEvent" in reference
    assert schema_reference.MARKER not in reference
    options = run("## Options\n\n<!-- format-options: canvas -->\n", "connect/canvas.md")
    assert "| `jwks` |" in options
    assert "| `maxTokenAgeSeconds` |" in options
    with pytest.raises(PluginError, match="lost its marker"):
        run("# Reference\n\nno marker\n", hooks.REFERENCE_PAGE)


def test_make_test_builds_the_site_strictly_and_make_docs_serves_it() -> None:
    import sys

    from devtools import check

    assert ("docs", [sys.executable, "-m", "devtools.docs.build"]) in check.STEPS
    build = (ROOT / "devtools" / "docs" / "build.py").read_text(encoding="utf-8")
    assert '"--strict"' in build
    assert '"--quiet"' not in build  # it would hide the warnings strict mode counts: the build would pass
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^docs: \$\(VENV\)/\.installed\n\t.*-m mkdocs serve", makefile, re.MULTILINE)
