"""MkDocs hooks (mkdocs.yml `hooks:`), run on every `mkdocs build` and `mkdocs serve`:

- each format page's options table is rendered from the format's options model
  (`<!-- format-options: NAME -->`);
- the canonical format reference page gets its tables from schemas/canonical-event.schema.json
  (devtools/docs/schema_reference.py), so the page cannot drift from the schema, nor the schema from
  the model (tests/unit/test_canonical_schema.py);
- the site publishes the schema and the OpenAPI description themselves, at the same relative paths as
  in the repository (`schemas/…`, `openapi/…`), so the description's `$ref` to the schema resolves on
  the site as it does in a checkout.

The OpenAPI page itself is rendered by neoteroi-mkdocs's OAD plugin (mkdocs.yml).
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `mkdocs serve` from its console script: the repository is not on the path
    sys.path.insert(0, str(ROOT))

from devtools.docs import schema_reference  # noqa: E402

#: Files of the repository published as they are, under the same path.
PUBLISHED = ("schemas/canonical-event.schema.json", "openapi/bridge.openapi.json")
REFERENCE_PAGE = "reference/canonical-event.md"


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    for path in PUBLISHED:
        files.append(File.generated(config, path, abs_src_path=str(ROOT / path)))
    return files


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    markdown = schema_reference.OPTIONS_MARKER.sub(
        lambda found: schema_reference.render_options(found.group(1)), markdown
    )
    if page.file.src_uri != REFERENCE_PAGE:
        return markdown
    if schema_reference.MARKER not in markdown:
        raise PluginError(f"{REFERENCE_PAGE} lost its marker {schema_reference.MARKER}")
    rendered = schema_reference.render(schema_reference.load_schema())
    return markdown.replace(schema_reference.MARKER, rendered)
