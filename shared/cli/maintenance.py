"""`forget` and `reconcile`: the commands that need both the state store and Graph."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from pydantic import ValidationError
from tqdm import tqdm

from shared.cli import backends
from shared.cli.catalog import graph_errors, graph_settings
from shared.cli.errors import CliError
from shared.config.settings import Settings
from shared.delivery.exceptions import PermanentFailure
from shared.delivery.resolve import Resolver
from shared.delivery.upsert import CourseActivityUpserter
from shared.events.model import Learner
from shared.graph.gateway import LearningGraph
from shared.operations.batching import Pacer, throttled
from shared.operations.forget import Receipt, forget, plan_forget
from shared.operations.reconcile import ReconcileReport, reconcile, rows_to_check
from shared.state.store import TableStateStore

T = TypeVar("T")

KINDS = {"email": "email", "upn": "upn", "userId": "userId"}


def run_with_store_and_graph(
    settings: Settings, work: Callable[[TableStateStore, LearningGraph], Awaitable[T]]
) -> T:
    """Run `work` against the configured storage and Graph; their failures as one-line errors."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    graph = backends.graph(settings)

    async def run() -> T:
        store = backends.state_store(settings)
        try:
            return await work(store, graph)
        finally:
            await store.close()

    with graph_errors(settings):
        try:
            return asyncio.run(run())
        except ClientAuthenticationError:
            raise
        except AzureError as exc:
            raise CliError(
                f"the state store could not be used ({type(exc).__name__}); is storage running?"
            ) from None


def _learner(kind: str, value: str) -> Learner:
    if kind not in KINDS:
        raise CliError(f"--learner KIND is one of {', '.join(KINDS)}, not {kind!r}")
    try:
        return Learner.model_validate({KINDS[kind]: value})
    except ValidationError:
        raise CliError(f"--learner {kind}: not a valid {kind}") from None


def forget_learner(args: argparse.Namespace) -> int:
    """Dry run unless --yes: the counts of what would go, then (with --yes) the receipt.

    The learner is looked up in Entra as the queue side does. An account already deleted from Entra
    (a departed employee: the most common request) is still forgotten: by `userId`, its object id is
    used as given (the activity rows are keyed by it); by `email` or `upn`, nothing maps it to an object
    id any more, so the dead letters naming it that way are removed and the command says that the
    activity rows need `--learner userId` (exit 1: the request is not known to be complete)."""
    settings = graph_settings(args)
    learner = _learner(args.learner[0], args.learner[1])

    async def work(store: TableStateStore, graph: LearningGraph) -> tuple[Receipt, bool]:
        """The receipt (or the dry run's counts), and whether Entra knew the learner."""
        user_id = await _entra_user_id(graph, learner)
        known = user_id is not None
        if user_id is None and learner.user_id is not None:
            user_id = str(learner.user_id)
        plan = await plan_forget(store, learner, user_id)
        if not args.yes:
            return plan.counts(), known
        with tqdm(
            total=len(plan.activities), unit="activity", disable=args.json or None, file=sys.stderr
        ) as bar:

            def advance() -> None:
                bar.update()

            upserter = CourseActivityUpserter(
                graph, store, claim_lease=timedelta(seconds=settings.claim_lease_seconds)
            )
            receipt = await forget(
                store, graph, plan, advance=advance, sleep=backends.async_sleep, upserter=upserter
            )
            return receipt, known

    receipt, known = run_with_store_and_graph(settings, work)
    _print_receipt(receipt, done=args.yes, as_json=args.json)
    if receipt.assigner_pending:
        print(
            f"note: {receipt.assigner_pending} other learners' assignments still name them as assigner: "
            "Graph refused or throttled their re-creation (their records were deleted, their rows say "
            "so); run the same forget again to finish.",
            file=sys.stderr,
        )
        return 1
    return _say_what_entra_did_not_know(learner, known=known)


async def _entra_user_id(graph: LearningGraph, learner: Learner) -> str | None:
    """The learner's object id as Entra knows it (throttled lookups wait as Graph asks), or None when
    Entra has no such user (any more)."""
    try:
        return await throttled(lambda: Resolver(graph).learner_user_id(learner, "cli"), backends.async_sleep)
    except PermanentFailure:
        return None


def _say_what_entra_did_not_know(learner: Learner, *, known: bool) -> int:
    if known:
        return 0
    if learner.user_id is not None:
        print(
            "note: Entra has no user with that object id (a deleted account?): its rows were matched by "
            "the id as given. Events that arrived after the deletion name the learner by email or UPN "
            "only: `forget --learner email|upn` removes the dead letters they left.",
            file=sys.stderr,
        )
        return 0
    print(
        f"note: no Entra user has that {learner.kind} (a deleted account, or a typo): only dead letters "
        "naming the learner that way were found. Their activity rows are keyed by their Entra object "
        "id: run `forget --learner userId <object id>` for those.",
        file=sys.stderr,
    )
    return 1


def _print_receipt(receipt: Receipt, *, done: bool, as_json: bool) -> None:
    if as_json:
        json.dump({"dryRun": not done, **receipt.to_json()}, sys.stdout, indent=2)
        print()
        return
    head = "forgotten" if done else "dry run (nothing removed; add --yes), would remove"
    print(
        f"{head}: {receipt.graph_records} Graph course activities"
        + (
            f" ({receipt.graph_records_already_gone} already gone)"
            if receipt.graph_records_already_gone
            else ""
        )
        + f", {receipt.activities} activity rows, {receipt.event_log_entries} event log entries, "
        f"{receipt.deliveries} delivery rows, {receipt.dead_letters} dead letters"
        + (
            f"; as the assigner of others' courses: {receipt.assigner_records} Graph assignments "
            f"created again without them, {receipt.assigner_entries} event log entries, "
            f"{receipt.assigner_letters} dead letters"
            if receipt.assigner_records or receipt.assigner_entries or receipt.assigner_letters
            else ""
        )
    )


def reconcile_with_graph(args: argparse.Namespace) -> int:
    """Report drift, or repair it with --repair. Exit 1 when drift is left or a record could not be
    read (Graph kept throttling or failing it): those are lines of the report, not its end."""
    settings = graph_settings(args)

    async def work(store: TableStateStore, graph: LearningGraph) -> ReconcileReport:
        rows = await rows_to_check(store, args.source)
        upserter = CourseActivityUpserter(
            graph, store, claim_lease=timedelta(seconds=settings.claim_lease_seconds)
        )
        with tqdm(total=len(rows), unit="activity", disable=args.json or None, file=sys.stderr) as bar:

            def advance() -> None:
                bar.update()

            return await reconcile(
                store,
                graph,
                upserter,
                rows,
                repair=args.repair,
                pacer=Pacer(args.rate, backends.async_sleep),
                advance=advance,
                sleep=backends.async_sleep,
            )

    report = run_with_store_and_graph(settings, work)
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        for drift in report.drift:
            fields = f" ({', '.join(drift.fields)})" if drift.fields else ""
            state = "repaired" if drift.repaired else (drift.detail or "not repaired")
            print(f"{drift.kind}{fields}: activity {drift.activity_id} source={drift.source}: {state}")
        for unread in report.unread:
            print(f"unread: activity {unread.activity_id} source={unread.source}: {unread.reason}")
        counts = report.counts()
        print("reconcile: " + ", ".join(f"{name}={value}" for name, value in counts.items()))
    return 0 if report.settled else 1
