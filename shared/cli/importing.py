"""`import --source NAME FILE...`: historical events through the webhook's queue (see
shared.operations.importing)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from shared.cli import backends
from shared.cli.catalog import graph_settings
from shared.cli.commands import environment
from shared.cli.errors import CliError
from shared.config.exceptions import ConfigurationError
from shared.config.settings import ASSIGNMENTS_ENABLED, load_source_settings
from shared.operations.catalog import CatalogFileError
from shared.operations.importing import Importer, ImportSummary, count_lines, read_items
from shared.sources.base import SourceFormat
from shared.sources.exceptions import SourceConfigurationError
from shared.sources.registry import build_source
from shared.storage.queues import QueueUnavailable


def _source(args: argparse.Namespace) -> SourceFormat:
    """The configured source's parser (its format and options; no secret needed to read files)."""
    try:
        sources = load_source_settings(environment(args.settings))
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None
    if args.source not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise CliError(f"no source named {args.source!r} is configured (configured: {known})")
    try:
        return build_source(sources[args.source], offline=True)
    except SourceConfigurationError as exc:
        raise CliError(str(exc)) from None


def import_events(args: argparse.Namespace) -> int:
    """Exit 0 when every line was accepted or ignored, 1 when some were invalid."""
    source = _source(args)
    queue = None if args.dry_run else backends.queues(graph_settings(args))
    assignments = environment(args.settings).get(ASSIGNMENTS_ENABLED, "").strip().lower() == "true"
    source = source.for_deployment(assignments_enabled=assignments)
    importer = Importer(queue, args.rate, sleep=backends.sleep, assignments_enabled=assignments)
    summary = ImportSummary()
    for path in args.files:
        _import_file(path, source, importer, summary, quiet=args.json)
    _report(summary, dry_run=args.dry_run, as_json=args.json)
    return 1 if summary.invalid else 0


def _import_file(
    path: Path, source: SourceFormat, importer: Importer, summary: ImportSummary, *, quiet: bool
) -> None:
    suffix = path.suffix.lower()
    try:
        lines = count_lines(path)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    # A CSV's header is no event; a body in the source's format has no lines to count.
    total = None if suffix == ".json" else lines - (suffix == ".csv")
    with tqdm(total=total, unit="line", desc=path.name, disable=quiet or None, file=sys.stderr) as bar:

        def advance() -> None:
            bar.update()

        try:
            importer.run(read_items(path, source), summary, advance)
        except CatalogFileError as exc:
            raise CliError(f"{exc}{_so_far(summary)}") from None
        except QueueUnavailable as exc:
            raise CliError(
                f"the events queue could not be used ({exc}); is storage running?{_so_far(summary)}"
            ) from None
        except UnicodeDecodeError:
            raise CliError(f"{path} is not UTF-8 text{_so_far(summary)}") from None


def _so_far(summary: ImportSummary) -> str:
    """What an import stopped midway leaves: the events queued before the stop stay queued."""
    if not summary.accepted:
        return ""
    return f" (accepted so far: {summary.accepted}; run the import again once fixed: it is deduplicated)"


def _report(summary: ImportSummary, *, dry_run: bool, as_json: bool) -> None:
    if as_json:
        json.dump({"dryRun": dry_run, **summary.to_json()}, sys.stdout, indent=2)
        print()
        return
    for problem in summary.problems:
        print(f"invalid {problem.where}: {problem.detail}", file=sys.stderr)
    if summary.invalid > len(summary.problems):
        print(f"... and {summary.invalid - len(summary.problems)} more invalid", file=sys.stderr)
    verb = "would queue" if dry_run else "queued"
    print(
        f"import: {summary.accepted} accepted ({verb}), {summary.invalid} invalid, {summary.ignored} ignored"
    )
