"""MkDocs hooks (mkdocs.yml `hooks:`), run on every `mkdocs build` and `mkdocs serve`:

- each format page's options table is rendered from the format's options model
  (`<!-- format-options: NAME -->`);
- the canonical format reference page gets its tables from schemas/canonical-event.schema.json
  (devtools/docs/schema_reference.py), so the page cannot drift from the schema, nor the schema from
  the model (tests/unit/test_canonical_schema.py);
- the site publishes the schema and the OpenAPI description themselves, at the same relative paths as
  in the repository (`schemas/…`, `openapi/…`), so the description's `$ref` to the schema resolves on
  the site as it does in a checkout; and so the files its vendor examples' `externalValue`s name
  (`tests/fixtures/…`), so each resolves beside the published description;
- the API page's `[OAD(...)]` tag of that description is rendered with neoteroi-mkdocs's OAD renderer and
  the plugin's options (mkdocs.yml), from a copy with each `externalValue` inlined as `value`
  (devtools/docs/openapi_examples.py): the renderer shows `value`s only, and the fixtures stay the
  examples' single source. This runs before the plugin's own `on_page_markdown`, which renders any other
  OAD tag.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `mkdocs serve` from its console script: the repository is not on the path
    sys.path.insert(0, str(ROOT))

from devtools.docs import openapi_examples, schema_reference  # noqa: E402

#: Files of the repository published as they are, under the same path (and, with them, the files the
#: description's examples name: openapi_examples.published_files).
PUBLISHED = ("schemas/canonical-event.schema.json", openapi_examples.DESCRIPTION)
REFERENCE_PAGE = "reference/canonical-event.md"
#: neoteroi-mkdocs's tag (neoteroi.mkdocs.oad.MkDocsOpenAPIDocumentationPlugin.rx) and plugin name.
OAD_TAG = re.compile(r"\[OAD\(([^\)]+)\)\]")
OAD_PLUGIN = "neoteroi.mkdocsoad"


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    paths = [*PUBLISHED, *openapi_examples.published_files(openapi_examples.load())]
    for path in paths:
        files.append(File.generated(config, path, abs_src_path=str(ROOT / path)))
    return files


def render_description(markdown: str, *, page: Page, config: MkDocsConfig) -> str:
    """Replace each OAD tag naming the API description (resolved as the plugin does: from the working
    directory, else from the page's) by the description rendered with its examples' values inlined."""
    description = (ROOT / openapi_examples.DESCRIPTION).resolve()

    def names_description(source: str) -> bool:
        page_dir = (ROOT / config.docs_dir / page.file.src_uri).parent
        candidates = [Path(source), page_dir / source]
        existing = [candidate.resolve() for candidate in candidates if candidate.exists()]
        return bool(existing) and existing[0] == description

    def render(found: re.Match[str]) -> str:
        if not names_description(found.group(1).strip("'\"")):
            return found.group(0)
        from openapidocs.mk.v3 import OpenAPIV3DocumentationHandler

        options = config.plugins[OAD_PLUGIN].config
        handler = OpenAPIV3DocumentationHandler(
            openapi_examples.with_inline_values(openapi_examples.load()),
            style="MKDOCS" if options.get("use_pymdownx", False) else "MARKDOWN",
            source=str(description),  # its $ref to the JSON Schema resolves from here
            templates_path=options.get("templates_path", None),
        )
        rendered: str = handler.write()
        return rendered

    return OAD_TAG.sub(render, markdown)


# Before the OAD plugin's own on_page_markdown (priority 0), which would render the tag without the
# vendor examples.
@event_priority(50)
def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    markdown = schema_reference.OPTIONS_MARKER.sub(
        lambda found: schema_reference.render_options(found.group(1)), markdown
    )
    if "[OAD(" in markdown:
        markdown = render_description(markdown, page=page, config=config)
    if page.file.src_uri != REFERENCE_PAGE:
        return markdown
    if schema_reference.MARKER not in markdown:
        raise PluginError(f"{REFERENCE_PAGE} lost its marker {schema_reference.MARKER}")
    rendered = schema_reference.render(schema_reference.load_schema())
    return markdown.replace(schema_reference.MARKER, rendered)
