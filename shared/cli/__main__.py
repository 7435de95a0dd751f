"""Operators' commands: `python -m shared.cli COMMAND ...` (see `--help`).

Settings are read from the environment, then from local.settings.json (`--settings`), the way the
Functions host reads them, so the CLI sees the same sources and secrets as the app beside it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from shared.cli import catalog, commands, doctor, importing, maintenance, operations, provider, trace
from shared.cli.errors import CliError
from shared.operations.importing import DEFAULT_RATE
from shared.state.models import LetterState


class _Parser(argparse.ArgumentParser):
    """argparse's refusals answered as every other problem is: one `error:` line and exit status 2
    (its own `error()` prints a usage block, then a `prog: error:` line). `--help` shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {_one_line(message)} (see --help)\n")


#: The slowest pace a command takes: one request (or event) every 100 s. Slower is no pace but a
#: stall, and at 1e-300 a second the first wait overflows the clock.
SLOWEST_RATE = 0.01


def _number(text: str, minimum: float, *, above: bool, what: str) -> float:
    """A finite number of at least `minimum` (above it, when `above`): NaN and infinities are no
    rate or wait (NaN passes every `<=` check, and disabled the pacing)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum or (above and value == minimum):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not {what}")
    return value


def _rate(text: str) -> float:
    return _number(text, SLOWEST_RATE, above=False, what=f"a number of {SLOWEST_RATE} a second or more")


def _seconds(text: str) -> float:
    return _number(text, 0.0, above=True, what="a number of seconds above 0")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m shared.cli", description="Viva Learning bridge: operators' commands.")
    parser.add_argument(
        "--settings",
        type=Path,
        default=Path("local.settings.json"),
        help="local.settings.json to read after the environment (default: ./local.settings.json)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    translate = sub.add_parser(
        "translate",
        help="print the canonical events a body becomes (no network, no signature check)",
        description="Print, as a JSON array on stdout, the canonical events FILE would become. "
        "Items the format ignores are left out and explained on stderr.",
    )
    which = translate.add_mutually_exclusive_group(required=True)
    which.add_argument("--source", help="a configured source (its format and options)")
    which.add_argument("--format", help="a built-in format with default options, e.g. generic")
    translate.add_argument("file", type=Path, help="the webhook body ('-' for stdin)")
    translate.set_defaults(run=commands.translate)

    send = sub.add_parser(
        "send",
        help="sign a body with a source's secret and post it to the bridge",
        description="Sign FILE with the configured secret of SOURCE and POST it to the bridge.",
    )
    send.add_argument("--source", required=True)
    send.add_argument("file", type=Path, help="the webhook body ('-' for stdin)")
    send.add_argument(
        "--url",
        default="http://127.0.0.1:7071/api",
        help="the bridge's base URL (default: the local one, http://127.0.0.1:7071/api)",
    )
    send.add_argument(
        "--wait",
        type=_seconds,
        metavar="SECONDS",
        help="then poll the configured Graph (local sandbox only) until every event's course "
        "activity is there, and print it",
    )
    send.set_defaults(run=commands.send)

    status = sub.add_parser(
        "status", help="queue backlog; parked, dead-lettered and replayed events by source"
    )
    status.add_argument(
        "--totals",
        action="store_true",
        help="also received, applied and deduplicated by source (reads every delivery row: slow when big)",
    )
    status.set_defaults(run=operations.status)

    compacting = sub.add_parser(
        "compact",
        help="apply retention now: old deliveries and dead letters removed, old event logs folded",
        description="What the daily retention timer does: delivery rows older than the retention period "
        "removed (voidings kept), each activity's older event-log entries folded into one baseline entry "
        "(the records do not change), dead letters past it removed (parked events kept).",
    )
    compacting.add_argument(
        "--days", type=int, help="the retention period in days (default: BRIDGE_RETENTION_DAYS, 400)"
    )
    compacting.add_argument("--dry-run", action="store_true", help="count only, change nothing")
    compacting.add_argument(
        "--sizes", action="store_true", help="count each state table's rows before and after"
    )
    compacting.add_argument("--json", action="store_true", help="print the figures as JSON")
    compacting.set_defaults(run=operations.compact)

    letters = sub.add_parser("deadletters", help="events that could not be applied, with their reasons")
    letters_sub = letters.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = letters_sub.add_parser("list", help="list parked and dead-lettered events")
    listing.add_argument("--source")
    listing.add_argument(
        "--reason",
        help="e.g. learnerNotFound, learnerNotLicensed, providerNotEnabled, graphRejected, poison",
    )
    listing.add_argument("--state", choices=[s.value for s in LetterState])
    listing.set_defaults(run=operations.list_letters)
    showing = letters_sub.add_parser("show", help="one dead letter, with its original message")
    showing.add_argument("id", help="source:eventId, as `deadletters list` prints it")
    showing.set_defaults(run=operations.show_letter)

    replay = sub.add_parser(
        "replay",
        help="put dead letters back through the pipeline (replaying twice does nothing more)",
    )
    replay.add_argument("ids", nargs="*", metavar="ID", help="source:eventId")
    replay.add_argument("--all", action="store_true")
    replay.add_argument("--source")
    replay.add_argument("--reason")
    replay.set_defaults(run=operations.replay)

    catalogs = sub.add_parser("catalog", help="the provider's course catalog in Viva Learning")
    catalogs_sub = catalogs.add_subparsers(dest="action", required=True, metavar="ACTION")
    pushing = catalogs_sub.add_parser(
        "push",
        help="create or update learning contents from a CSV or JSON file",
        description="PATCH learningContents(externalId=...) for each entry of FILE (.csv with a "
        "header, or .json): creates new content, updates known content. Needs "
        "LearningContent.ReadWrite.All.",
    )
    pushing.add_argument("file", type=Path, help="the catalog (.csv or .json)")
    pushing.add_argument("--json", action="store_true", help="print the summary as JSON")
    pushing.set_defaults(run=catalog.push)

    importer = sub.add_parser(
        "import",
        help="historical events from files, through the webhook's queue (deduplicated by eventId)",
        description="Reads FILEs a line at a time (.csv with a header, .jsonl of canonical events, or "
        ".json in the source's own format) and queues their events as the source's webhook would. "
        "Invalid lines are named and skipped; running it again changes nothing.",
    )
    importer.add_argument("--source", required=True, help="the configured source the events are from")
    importer.add_argument("files", nargs="+", type=Path, metavar="FILE")
    importer.add_argument("--dry-run", action="store_true", help="validate only; queue nothing")
    importer.add_argument(
        "--rate",
        type=_rate,
        default=DEFAULT_RATE,
        help=f"events queued per second at most (default {DEFAULT_RATE:g}: the queue side stays "
        "within Graph's throttling)",
    )
    importer.add_argument("--json", action="store_true", help="print the summary as JSON")
    importer.set_defaults(run=importing.import_events)

    forgetting = sub.add_parser(
        "forget",
        help="delete a learner's course activities from Graph and every state row about them",
        description="For a data-subject request: deletes the learner's course activities written by "
        "the bridge from Graph, and their activity rows, event logs, delivery rows and dead letters. "
        "A dry run (counts only) without --yes. Prints counts, never identifiers.",
    )
    forgetting.add_argument(
        "--learner",
        nargs=2,
        required=True,
        metavar=("KIND", "VALUE"),
        help="KIND is email, upn or userId (the Entra object id)",
    )
    forgetting.add_argument("--yes", action="store_true", help="really remove (default: dry run)")
    forgetting.add_argument("--json", action="store_true", help="print the receipt as JSON")
    forgetting.set_defaults(run=maintenance.forget_learner)

    reconciling = sub.add_parser(
        "reconcile",
        help="read back from Graph what the bridge wrote and report (or repair) drift",
        description="Reads each course activity the state store says the bridge wrote back from Graph "
        "and reports drift: missing, replaced, owned by another learner or content, changed outside "
        "the bridge. --repair writes what the events call for again. Exit 1 when drift is left.",
    )
    reconciling.add_argument("--source", help="only the activities this source created")
    reconciling.add_argument("--repair", action="store_true", help="write what the events call for again")
    reconciling.add_argument(
        "--rate",
        type=_rate,
        default=5.0,
        help="Graph reads per second at most (default 5; Retry-After is always honoured)",
    )
    reconciling.add_argument("--json", action="store_true", help="print the report as JSON")
    reconciling.set_defaults(run=maintenance.reconcile_with_graph)

    tracing = sub.add_parser(
        "trace",
        help="a learner's course activities, their events and what became of them",
        description="For each course activity the bridge holds for the learner: its events in time order "
        "and their deliveries, what they call for, what was last written to Graph, what Graph has now, "
        "and parked or dead-lettered events with their reasons and the command that replays them. "
        "Prints nothing personal beyond what you typed. Exit 1 when nothing is found.",
    )
    tracing.add_argument(
        "--learner",
        nargs=2,
        required=True,
        metavar=("KIND", "VALUE"),
        help="KIND is email, upn or userId (the Entra object id)",
    )
    tracing.add_argument("--course", help="only this course (its external id)")
    tracing.add_argument("--source", help="only this source")
    tracing.add_argument("--json", action="store_true", help="print the story as JSON")
    tracing.set_defaults(run=trace.trace)

    provider.add_parser(sub)
    doctor.add_parser(sub)

    retrying = sub.add_parser(
        "retry-parked", help="retry parked events that are due now (the timer does it every 5 minutes)"
    )
    retrying.add_argument(
        "--now", action="store_true", help="every parked event, due or not (once their cause is fixed)"
    )
    retrying.add_argument("--reason", help="only events parked for this reason, e.g. learnerNotLicensed")
    retrying.set_defaults(run=operations.retry_parked)
    return parser


def _one_line(message: str) -> str:
    """A message as one line, whatever it quotes (a value with line breaks stays on the line)."""
    return " ".join(message.splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    """Every outcome is the one docs/operate.md promises: 0 or 1 with a summary, or 2 with one `error:` line.

    Every problem a command can meet is answered where it arises (CliError). The last handler is
    there for a cause nobody found yet: one line naming the exception's type, never its text (it may
    quote personal data); `BRIDGE_CLI_TRACEBACK=1` re-raises it, with its traceback, for a report.
    tests/unit/test_cli_totality.py fails on that line, so a cause it meets is fixed, not hidden."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except CliError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("BRIDGE_CLI_TRACEBACK") == "1":
            raise
        print(f"error: internal error ({type(exc).__name__}); please report it", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
