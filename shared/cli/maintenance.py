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
from shared.graph.errors import GraphError
from shared.graph.gateway import LearningGraph
from shared.operations.batching import Pacer
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
        except GraphError as exc:
            raise CliError(f"Graph refused a request ({exc.status} {exc.code}): {exc.message}") from None


def _learner(kind: str, value: str) -> Learner:
    if kind not in KINDS:
        raise CliError(f"--learner KIND is one of {', '.join(KINDS)}, not {kind!r}")
    try:
        return Learner.model_validate({KINDS[kind]: value})
    except ValidationError:
        raise CliError(f"--learner {kind}: not a valid {kind}") from None


def forget_learner(args: argparse.Namespace) -> int:
    """Dry run unless --yes: the counts of what would go, then (with --yes) the receipt."""
    settings = graph_settings(args)
    learner = _learner(args.learner[0], args.learner[1])

    async def work(store: TableStateStore, graph: LearningGraph) -> tuple[bool, Receipt]:
        try:
            user_id = await Resolver(graph).learner_user_id(learner, "cli")
        except PermanentFailure:
            raise CliError(
                "no Entra user matches that learner; if the account was deleted, give "
                "--learner userId with its object id"
            ) from None
        plan = await plan_forget(store, learner, user_id)
        if not args.yes:
            return False, plan.counts()
        with tqdm(
            total=len(plan.activities), unit="activity", disable=args.json or None, file=sys.stderr
        ) as bar:

            def advance() -> None:
                bar.update()

            return True, await forget(store, graph, plan, advance=advance, sleep=backends.async_sleep)

    done, receipt = run_with_store_and_graph(settings, work)
    _print_receipt(receipt, done=done, as_json=args.json)
    return 0


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
    )


def reconcile_with_graph(args: argparse.Namespace) -> int:
    """Report drift, or repair it with --repair. Exit 1 when drift is left or a record could not be
    read (Graph kept throttling or failing it): those are lines of the report, not its end."""
    settings = graph_settings(args)
    if args.rate <= 0:
        raise CliError("--rate must be above 0 (Graph reads per second)")

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
