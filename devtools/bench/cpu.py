"""`python -m devtools.bench.cpu [--baseline REF] [--events N] [--rounds R] [--profile DIR]`: the queue
side's CPU per event, measured in process, for the working tree and (with `--baseline`) another commit
in the same session.

`make bench` measures the dev host's process, which also polls and deletes queue messages (the
Functions host's work in Azure, done there in .NET). This measures only what the worker does: a fresh
interpreter per tree and round imports that tree's `function_app` and calls its `apply_event` for
ready-made queue messages, 16 at a time (host.json's batchSize), against one Azurite and one Graph
sandbox started here. Per tree and round, three phases on learners of its own:

- warm-up (not reported): one new activity per learner, so learners and the course are cached;
- new: one new activity per learner on the measured course;
- update: a later progress event for each of those activities.

CPU is the child's `time.process_time()` across a phase; the table gives each tree's median over the
rounds (trees alternate within a round, so a burst of load hits both) and the ratio. Every phase's
Graph writes are counted by the sandbox, so a tree that failed its events cannot report a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

from devtools.bench.baseline import checkout, describe
from devtools.bench.report import calibration, machine
from devtools.bench.stack import writes_in
from devtools.localstack.processes import ROOT
from devtools.localstack.settings import new_webhook_secret
from devtools.localstack.stack import PROVIDER_ID, LocalStack

PHASES = ("new", "update")
_COURSE, _WARM_COURSE = "cpu-course", "cpu-warm-course"

# Run in a fresh interpreter whose working directory and sys.path are the tree measured: only that
# tree's code is imported. argv[1]: {"run", "events", "concurrency", "profile",
# "warm", "course"}. Prints one JSON line.
_CHILD = """
import asyncio, cProfile, json, sys, time
from datetime import UTC, datetime
import function_app
from azure.functions.queue import QueueMessage
from shared.events.model import CanonicalEvent
from shared.events.queue import QueuedEvent

spec = json.loads(sys.argv[1])
run, events = spec["run"], spec["events"]

def message(n, course, percentage, day):
    event = CanonicalEvent.model_validate({
        "source": "generic", "eventId": f"{run}-{course}-{n}-{day}",
        "occurredAt": f"2026-11-{day:02d}T10:00:00Z", "learner": {"email": f"{run}-{n}@cpu.example"},
        "course": {"externalId": course}, "status": "inProgress", "completionPercentage": percentage,
    })
    body = QueuedEvent(event=event, received_at=datetime.now(UTC)).model_dump_json(
        by_alias=True, exclude_none=True)
    return QueueMessage(id=f"{run}-{n}-{day}", body=body.encode(), dequeue_count=1)

async def phase(messages):
    gate = asyncio.Semaphore(spec["concurrency"])
    async def one(m):
        async with gate:
            await function_app.apply_event(m)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(m) for m in messages))
    return (time.process_time() - cpu) * 1000 / len(messages), len(messages) / (time.perf_counter() - wall)

async def main():
    await phase([message(n, spec["warm"], 10, 1) for n in range(events)])
    profile = cProfile.Profile() if spec["profile"] else None
    results = {}
    for name, percentage, day in (("new", 20, 2), ("update", 60, 3)):
        if profile: profile.enable()
        results[name] = await phase([message(n, spec["course"], percentage, day) for n in range(events)])
        if profile:
            profile.disable()
            profile.dump_stats(spec["profile"] + f"-{name}.prof")
            profile = cProfile.Profile()
    print(json.dumps(results))

asyncio.run(main())
"""


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.bench.cpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--baseline", metavar="REF", help="also measure this commit (e.g. 4f4757d)")
    parser.add_argument("--events", type=int, default=200, help="events per phase (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tree (default 3)")
    parser.add_argument("--concurrency", type=int, default=16, help="messages at once (default 16)")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="write cProfile stats per tree and phase into DIR"
    )
    return parser.parse_args(argv)


class Stack:
    """The project's LocalStack without its dev host (the children are the worker), with every learner
    the runs need."""

    def __init__(self, workdir: Path, stack: ExitStack) -> None:
        self.local = LocalStack(workdir, new_webhook_secret())
        stack.callback(self.local.stop)
        self.local.start(devhost=False)
        self.http = httpx.Client(timeout=60)
        stack.callback(self.http.close)

    def seed(self, runs: list[str], events: int) -> None:
        emails = [f"{run}-{n}@cpu.example" for run in runs for n in range(events)]
        users = [{"id": _id(e), "userPrincipalName": e, "mail": e, "displayName": e} for e in emails]
        contents = [
            {"externalId": c, "title": c, "contentWebUrl": f"https://cpu.example/{c}", "languageTag": "en-us"}
            for c in (_COURSE, _WARM_COURSE)
        ]
        document = {"users": users, "contents": {PROVIDER_ID: contents}}
        self.http.post(f"{self.local.sandbox}/_sandbox/seed", json=document).raise_for_status()

    def writes(self) -> int:
        return writes_in(self.http.get(f"{self.local.sandbox}/_sandbox/stats").json()["requests"])


def _id(email: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, email))


def run_child(stack: Stack, tree: Path, run: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """One fresh interpreter in `tree`: {phase: [CPU ms per event, events/s]}."""
    profile = str(args.profile.resolve() / run) if args.profile else None
    spec = {
        "run": run,
        "events": args.events,
        "concurrency": args.concurrency,
        "profile": profile,
        "warm": _WARM_COURSE,
        "course": _COURSE,
    }
    env = {**os.environ, **stack.local.settings_values, "PYTHONPATH": str(tree)}
    before = stack.writes()
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(spec)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the run in {tree} failed:\n{result.stderr[-3000:]}")
    written = stack.writes() - before
    if written < 3 * args.events:
        raise RuntimeError(
            f"the run in {tree} wrote {written} of {3 * args.events} records to Graph:\n"
            f"{result.stderr[-3000:]}"
        )
    figures: dict[str, list[float]] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def render(results: dict[str, list[dict[str, list[float]]]], labels: dict[str, str]) -> str:
    names = list(results)
    lines = ["| | " + " | ".join(labels[n] for n in names) + (" | ratio |" if len(names) == 2 else " |")]
    lines.append("| --- " * (len(names) + 1 + (len(names) == 2)) + "|")
    for phase in PHASES:
        for index, what in ((0, "worker CPU ms per event"), (1, "events/s (no Graph latency)")):
            medians = [statistics.median(r[phase][index] for r in results[n]) for n in names]
            row = f"| {phase}: {what} | " + " | ".join(f"{m:.1f}" for m in medians)
            ratio = f" | {medians[1] / medians[0]:.2f}" if len(names) == 2 and medians[0] else ""
            lines.append(row + ratio + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    loop_before = calibration()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-cpu-") as workdir:
        trees: dict[str, Path] = {}
        labels: dict[str, str] = {}
        if args.baseline:
            trees["baseline"] = stack.enter_context(checkout(args.baseline))
            labels["baseline"] = f"{describe(args.baseline).split()[0]} (baseline)"
        trees["tree"] = ROOT
        labels["tree"] = "working tree"
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        services = Stack(Path(workdir), stack)
        runs = [f"r{r}{name[0]}" for r in range(args.rounds) for name in trees]
        services.seed(runs, args.events)
        results: dict[str, list[dict[str, list[float]]]] = {name: [] for name in trees}
        for r in range(args.rounds):
            for name, tree in trees.items():
                print(f"cpu: round {r + 1} of {args.rounds}, {labels[name]}", file=sys.stderr, flush=True)
                results[name].append(run_child(services, tree, f"r{r}{name[0]}", args))
    print(f"{machine()}; loop {loop_before * 1000:.0f}/{calibration() * 1000:.0f} ms")
    print(f"{args.events} events a phase, {args.concurrency} at once, medians of {args.rounds} round(s)")
    if args.baseline:
        print(f"baseline: {describe(args.baseline)}")
    print()
    print(render(results, labels))
    if args.profile:
        print(f"\ncProfile stats in {args.profile}: <run>-<phase>.prof (r0b = round 0, baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
