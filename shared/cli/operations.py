"""Operators' commands over the configured storage: status, dead letters, replay."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from tqdm import tqdm

from shared.cli import backends
from shared.cli.commands import environment
from shared.cli.errors import CliError
from shared.config.exceptions import ConfigurationError
from shared.config.settings import Settings, load_settings
from shared.delivery.deadletters import TENANT_WIDE, DeadLetters
from shared.events.names import SOURCE_NAME_PATTERN
from shared.events.queue import EVENTS_QUEUE, POISON_QUEUE
from shared.operations.retention import apply_retention
from shared.sources.base import load_json
from shared.sources.exceptions import InvalidPayload
from shared.state.models import DeadLetterRecord, LetterState
from shared.state.store import TableStateStore
from shared.storage.queues import QueueUnavailable

T = TypeVar("T")


def _run(args: argparse.Namespace, work: Callable[[TableStateStore, Settings], Awaitable[T]]) -> T:
    try:
        settings = load_settings(environment(args.settings))
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None

    async def run() -> T:
        store = backends.state_store(settings)
        try:
            return await work(store, settings)
        finally:
            await store.close()

    from azure.core.exceptions import AzureError

    try:
        return asyncio.run(run())
    except AzureError as exc:
        raise CliError(
            f"the state store could not be read ({type(exc).__name__}); is storage running?"
        ) from None
    except QueueUnavailable as exc:
        raise CliError(f"the events queue could not be used ({exc}); is storage running?") from None


def _letter_id(letter: DeadLetterRecord) -> str:
    return f"{letter.source}:{letter.event_id}"


def status(args: argparse.Namespace) -> int:
    """What needs an operator, at a cost that does not grow with the traffic: the queues' backlog (one
    request each), and the dead letters (a small table: retention bounds it) by source and state.
    `--totals` adds received/applied/deduplicated per source, a scan of every delivery."""

    async def work(store: TableStateStore, settings: Settings) -> int:
        counts: dict[str, Counter[str]] = {}
        reasons: dict[str, Counter[str]] = {}
        oldest: dict[LetterState, DeadLetterRecord] = {}
        async for letter in store.dead_letters(brief=True):
            counts.setdefault(letter.source, Counter())[letter.state.value] += 1
            if letter.state is not LetterState.REPLAYED:
                reasons.setdefault(letter.reason, Counter())[letter.state.value] += 1
            if letter.state not in oldest or letter.first_failure < oldest[letter.state].first_failure:
                oldest[letter.state] = letter
        columns = ["parked", "deadlettered", "replayed"]
        if args.totals:
            await _add_totals(store, counts)
            columns = ["received", "applied", "deduplicated", *columns]
        queues = backends.queues(settings)
        waiting, poisoned = queues.backlog(EVENTS_QUEUE), queues.backlog(POISON_QUEUE)
        print(f"queue backlog: {waiting} event(s) waiting, {poisoned} poisoned")
        print(f"{'source':<20}" + "".join(f"{c:>14}" for c in columns))
        for source in sorted(counts):
            print(f"{source:<20}" + "".join(f"{counts[source][c]:>14}" for c in columns))
        for state in (LetterState.PARKED, LetterState.DEADLETTERED):
            if state in oldest:
                letter = oldest[state]
                age = datetime.now(UTC) - letter.first_failure
                print(f"oldest {state.value}: {_letter_id(letter)} ({letter.reason}, for {_age(age)})")
        _print_reasons(reasons)
        return 0

    return _run(args, work)


def _print_reasons(reasons: dict[str, Counter[str]]) -> None:
    """Parked and dead-lettered events by reason; the tenant-wide ones (every write fails until the
    tenant or the provider is fixed) with what to do."""
    if not reasons:
        return
    columns = ["parked", "deadlettered"]
    print(f"{'reason':<28}" + "".join(f"{c:>14}" for c in columns))
    for reason in sorted(reasons):
        print(f"{reason:<28}" + "".join(f"{reasons[reason][c]:>14}" for c in columns))
    for reason in sorted(TENANT_WIDE.keys() & reasons.keys()):
        print(f"tenant-wide: {reason}: {TENANT_WIDE[reason]}")


async def _add_totals(store: TableStateStore, counts: dict[str, Counter[str]]) -> None:
    async for delivery in store.deliveries():
        row = counts.setdefault(delivery.source, Counter())
        row["received"] += max(delivery.seen, 1)
        row["deduplicated"] += max(delivery.seen - 1, 0)
        row["applied"] += delivery.status == "applied"


#: The longest retention period `compact` takes: a century keeps everything the bridge ever stored,
#: and a longer one would put the cutoff before the calendar's (and Table storage's) first dates.
MAX_RETENTION_DAYS = 36_500


def compact(args: argparse.Namespace) -> int:
    """Retention now, as the daily timer applies it (`--days` overrides BRIDGE_RETENTION_DAYS)."""
    if args.days is not None and not 0 <= args.days <= MAX_RETENTION_DAYS:
        raise CliError(f"--days is a number of days from 0 to {MAX_RETENTION_DAYS:,} (a century)")

    async def work(store: TableStateStore, settings: Settings) -> int:
        days = settings.retention_days if args.days is None else args.days
        if days > MAX_RETENTION_DAYS:
            raise CliError(
                f"BRIDGE_RETENTION_DAYS is {days:,} days; compact takes at most {MAX_RETENTION_DAYS:,}"
            )
        before = await store.table_sizes() if args.sizes else None
        report = await apply_retention(store, datetime.now(UTC), days, dry_run=args.dry_run)
        after = await store.table_sizes() if args.sizes else None
        if args.json:
            print(
                json.dumps(
                    {
                        "days": days,
                        "dryRun": args.dry_run,
                        **report.counts(),
                        "sizesBefore": before,
                        "sizesAfter": after,
                    }
                )
            )
            return 0
        verb = "would remove" if args.dry_run else "removed"
        print(
            f"retention {days} days: {verb} {report.deliveries_removed} delivery row(s), "
            f"{report.entries_folded} event-log entr(ies) folded into the baselines of "
            f"{report.logs_compacted} activit(ies), {report.dead_letters_removed} dead letter(s)"
        )
        if report.logs_busy:
            print(f"{report.logs_busy} activit(ies) changed while compacting: the next run compacts them")
        if before is not None and after is not None:
            for table in before:
                print(f"  {table:<12} {before[table]:>10} -> {after[table]:>10} rows")
        return 0

    return _run(args, work)


def list_letters(args: argparse.Namespace) -> int:
    async def work(store: TableStateStore, _: Settings) -> int:
        letters = [letter async for letter in store.dead_letters() if _matches(letter, args)]
        letters.sort(key=lambda letter: letter.first_failure)
        print(f"{'id':<48}{'state':<14}{'reason':<22}{'attempts':>9}  first failure")
        for letter in letters:
            print(
                f"{_letter_id(letter):<48}{letter.state.value:<14}{letter.reason:<22}{letter.attempts:>9}  "
                f"{letter.first_failure:%Y-%m-%d %H:%M}"
            )
        print(f"{len(letters)} dead letter(s)", file=sys.stderr)
        return 0

    return _run(args, work)


def show_letter(args: argparse.Namespace) -> int:
    source, _, event_id = args.id.partition(":")
    if not event_id:
        raise CliError("an id is source:eventId, as `deadletters list` prints it")
    if not _could_be_a_letter(source, event_id):
        raise CliError(f"no dead letter {args.id}")

    async def work(store: TableStateStore, _: Settings) -> int:
        letter = await store.dead_letter(source, event_id)
        if letter is None:
            raise CliError(f"no dead letter {args.id}")
        shown = {
            "id": _letter_id(letter),
            "state": letter.state.value,
            "reason": letter.reason,
            "detail": letter.detail,
            "graphErrorCode": letter.graph_error_code,
            "attempts": letter.attempts,
            "firstFailure": letter.first_failure.isoformat(),
            "lastFailure": letter.last_failure.isoformat(),
            "nextAttempt": letter.next_attempt.isoformat() if letter.next_attempt else None,
            "message": _message(letter.message),
        }
        print(json.dumps(shown, indent=2))
        return 0

    return _run(args, work)


def _could_be_a_letter(source: str, event_id: str) -> bool:
    """Whether storage could hold a letter under this id: its source is a source name (the letters of
    unreadable messages are under `unknown`, which is one), its event id UTF-8 text. Anything else
    cannot be looked up at all (the row key hashes the UTF-8 bytes; Table storage refuses / # ? in
    a PartitionKey), and names no dead letter."""
    try:
        event_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return re.fullmatch(SOURCE_NAME_PATTERN, source) is not None


def _message(message: str) -> Any:
    """The original queue message as JSON when it reads as JSON (as the webhook reads a body), else
    as its text: an `invalidMessage` letter holds whatever reached the queue, truncated JSON included."""
    try:
        return load_json(message.encode("utf-8"))
    except (InvalidPayload, UnicodeEncodeError):
        return message


def replay(args: argparse.Namespace) -> int:
    if not (args.ids or args.all or args.source or args.reason):
        raise CliError("say what to replay: IDs, --all, --source S or --reason R")
    wanted = set(args.ids)

    async def work(store: TableStateStore, settings: Settings) -> int:
        letters: list[DeadLetterRecord] = []
        already: set[str] = set()
        async for letter in store.dead_letters():
            named = _letter_id(letter) in wanted
            if not (args.all or named or ((args.source or args.reason) and _matches(letter, args))):
                continue
            if letter.state is LetterState.REPLAYED:
                if named:
                    already.add(_letter_id(letter))
                continue
            letters.append(letter)
        missing = wanted - already - {_letter_id(letter) for letter in letters}
        dead_letters = DeadLetters(store, backends.queues(settings))
        replayed = 0
        for letter in tqdm(
            letters, desc="replaying", unit="event", file=sys.stderr, disable=len(letters) < 2
        ):
            replayed += await dead_letters.replay(letter)
        print(f"replayed {replayed} event(s)")
        if already:
            print(f"already replayed (nothing to do): {', '.join(sorted(already))}", file=sys.stderr)
        if missing:
            print(f"not found: {', '.join(sorted(missing))}", file=sys.stderr)
        return 1 if missing else 0

    return _run(args, work)


def retry_parked(args: argparse.Namespace) -> int:
    async def work(store: TableStateStore, settings: Settings) -> int:
        letters = DeadLetters(store, backends.queues(settings))
        count = await letters.retry_due(at_once=args.now, reason=args.reason)
        print(f"put {count} parked event(s) back on the queue")
        return 0

    return _run(args, work)


def _matches(letter: DeadLetterRecord, args: argparse.Namespace) -> bool:
    return (
        (not getattr(args, "source", None) or letter.source == args.source)
        and (not getattr(args, "reason", None) or letter.reason == args.reason)
        and (not getattr(args, "state", None) or letter.state.value == args.state)
    )


def _age(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
