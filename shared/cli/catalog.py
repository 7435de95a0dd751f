"""`catalog push FILE`: the provider's course catalog into Viva Learning (see shared.operations.catalog)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator

from tqdm import tqdm

from shared.cli import backends
from shared.cli.commands import environment
from shared.cli.errors import CliError
from shared.config.exceptions import ConfigurationError
from shared.config.settings import Settings, load_settings
from shared.graph.errors import GraphError, GraphUnavailable
from shared.operations.catalog import (
    CatalogFileError,
    CatalogSummary,
    GraphRefused,
    push_entries,
    read_catalog,
    validate_entries,
)


def graph_settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(environment(args.settings))
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None


@contextlib.contextmanager
def graph_errors(settings: Settings) -> Iterator[None]:
    """Graph failures that stop a whole command, as one line each."""
    from azure.core.exceptions import ClientAuthenticationError

    try:
        yield
    except GraphRefused as exc:
        raise CliError(str(exc)) from None
    except GraphUnavailable as exc:
        raise CliError(f"Graph could not be reached at {settings.graph_base_url}: {exc}") from None
    except GraphError as exc:  # refused as a whole (a batch), or past its attempts where no item can wait
        raise CliError(f"Graph refused a request ({exc.status} {exc.code}): {exc.message}") from None
    except ClientAuthenticationError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(
            f"no Graph token could be obtained (see BRIDGE_GRAPH_AUTH and AZURE_CLIENT_ID): {first}"
        ) from None


def push(args: argparse.Namespace) -> int:
    """Validate the whole file first (nothing is written for a file that cannot be read), then write
    each valid entry. Exit 0 when every entry was written, 1 when some were invalid or refused."""
    settings = graph_settings(args)
    summary = CatalogSummary()
    try:
        entries = validate_entries(read_catalog(args.file), summary)
    except CatalogFileError as exc:
        raise CliError(str(exc)) from None
    graph = backends.graph(settings)
    with tqdm(total=len(entries), unit="content", disable=args.json or None, file=sys.stderr) as bar:

        def advance() -> None:
            bar.update()

        with graph_errors(settings):
            asyncio.run(push_entries(graph, entries, summary, advance=advance, sleep=backends.async_sleep))
    _report(summary, as_json=args.json)
    return 0 if not summary.invalid and not summary.rejected else 1


def _report(summary: CatalogSummary, *, as_json: bool) -> None:
    if as_json:
        json.dump(summary.to_json(), sys.stdout, indent=2)
        print()
        return
    for problem in summary.invalid:
        print(f"invalid {problem.where}: {problem.detail}", file=sys.stderr)
    for problem in summary.rejected:
        print(f"rejected {problem.where}: {problem.detail}", file=sys.stderr)
    print(
        f"catalog push: {summary.created} created, {summary.updated} updated, "
        f"{len(summary.invalid)} invalid, {len(summary.rejected)} rejected by Graph"
    )
