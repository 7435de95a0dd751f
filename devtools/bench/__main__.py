"""`python -m devtools.bench [--smoke] [--events N] ...` (`make bench`): the bridge's figures beside a naive
handler's, measured in one run on a stack the bench starts for itself.

It starts Azurite (in memory), a counting proxy in front of Azurite's table endpoint, the seeded Graph
sandbox, the dev host serving the bridge, and a second dev host serving the naive handler
(`devtools/bench/naive.py`), then measures (see `devtools/bench/measure.py`): cold start,
acknowledgement latency under 1 and 50 concurrent senders, and the queue side's events/s, CPU per
event of the worker and of Azurite, Table round trips and Graph calls per event, for new activities
and updates at 0, 50 and 150 ms of Graph latency. It prints Markdown tables on stdout (progress goes
to stderr) and draws throughput against Graph latency into a PNG.

It measures whatever code is in the tree. The machine is shared: figures are noisy, never asserted.
With `--baseline REF` it also measures that commit's bridge in the same run, on the same stack: the
commit is checked out in a temporary git worktree and served by a third dev host (the working tree's
dev host code, so only the bridge differs), its phases interleaved with the working tree's; each
table row then gains the baseline's figure and the ratio working tree / baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from devtools.bench.baseline import BaselineError, checkout, describe
from devtools.bench.measure import Bench, Results, pairs_needed
from devtools.bench.plot import draw
from devtools.bench.report import calibration, details, machine, render
from devtools.bench.stack import BenchStack
from devtools.bench.workload import Workload
from devtools.devhost.host import QueueOptions
from devtools.localstack.processes import ROOT
from devtools.localstack.settings import new_webhook_secret

DEFAULT_PNG = ROOT / "docs" / "bench-throughput.png"
SMOKE_PNG = ROOT / ".local" / "bench-smoke.png"
#: Graph latency while acknowledgement latency is measured (the naive handler's answer waits for Graph).
ACK_LATENCY_MS = 50


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a small run (about a minute), for the test suite"
    )
    parser.add_argument("--events", type=int, help="events per queue-side phase (default 150; smoke 16)")
    parser.add_argument(
        "--senders", type=_ints, help="concurrent senders for ack latency (default 1,50; smoke 1,10)"
    )
    parser.add_argument(
        "--ack-requests", type=_ints, help="requests for each --senders value (default 100,300; smoke 5,20)"
    )
    parser.add_argument("--latencies", type=_ints, default=[0, 50, 150], help="Graph latencies, ms")
    parser.add_argument(
        "--cold-runs", type=int, help="fresh interpreters for cold start (default 5; smoke 1)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="the naive handler's concurrent senders (default: host.json batchSize + newBatchThreshold, "
        "the most messages the queue side has in progress)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also measure this commit's bridge (e.g. 4f4757d), interleaved with the working tree's",
    )
    parser.add_argument("--png", type=Path, help=f"the chart (default {DEFAULT_PNG.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.events = args.events or (16 if smoke else 150)
    args.senders = args.senders or ([1, 10] if smoke else [1, 50])
    args.ack_requests = args.ack_requests or ([5, 20] if smoke else [100, 300])
    args.cold_runs = args.cold_runs if args.cold_runs is not None else (1 if smoke else 3)
    args.png = args.png or (SMOKE_PNG if smoke else DEFAULT_PNG)
    if len(args.senders) != len(args.ack_requests):
        parser.error("--senders and --ack-requests need as many values each")
    if args.concurrency is None:
        host_json = json.loads((ROOT / "host.json").read_text())
        args.concurrency = QueueOptions.from_host_json(host_json).most_in_progress
    return args


_BEGAN = time.monotonic()


def progress(text: str) -> None:
    print(f"bench [{time.monotonic() - _BEGAN:4.0f} s]: {text}", file=sys.stderr, flush=True)


def measure(stack: BenchStack, args: argparse.Namespace, results: Results) -> None:
    bridges = 1 if stack.baseline_tree is None else 2
    needed = pairs_needed(args.ack_requests, args.events, len(args.latencies), args.cold_runs, 1 + bridges)
    workload = Workload(needed, generations=bridges)
    workload.seed(stack.sandbox)
    bench = Bench(stack, workload, args.concurrency)
    if args.cold_runs:
        progress(f"cold start, {args.cold_runs} fresh interpreters each")
        results.cold = bench.cold_start(args.cold_runs)
    progress("warming up (every learner and course once, for each bridge)")
    bench.warm_up()
    stack.faults(latencyMs=ACK_LATENCY_MS)
    for senders, requests in zip(args.senders, args.ack_requests, strict=True):
        progress(f"acknowledgement latency, {senders} concurrent sender(s), {requests} requests each system")
        results.acks += bench.acks(senders, requests)
    for latency in args.latencies:
        progress(f"queue side at {latency} ms Graph latency, {args.events} events a phase")
        results.phases += bench.queue_side(latency, args.events)
    stack.faults()


@contextmanager
def baseline_tree(ref: str | None) -> Iterator[Path | None]:
    """The baseline commit's tree for as long as the run lasts (None without --baseline)."""
    if ref is None:
        yield None
        return
    progress(f"checking out the baseline {describe(ref)}")
    with checkout(ref) as tree:
        yield tree


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    results = Results(datetime.now(UTC), args.concurrency, ack_latency_ms=ACK_LATENCY_MS)
    about = machine()
    calibrated = calibration()
    if args.baseline:
        try:
            results.baseline = describe(args.baseline)
        except BaselineError as exc:
            progress(f"no baseline: {exc}")
            return 2
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir, baseline_tree(args.baseline) as tree:
        stack = BenchStack(
            Path(workdir), new_webhook_secret(), devhost_env={"DEVHOST_LOG_LEVEL": "INFO"}, baseline_tree=tree
        )
        try:
            hosts = "two dev hosts" if tree is None else "three dev hosts, the baseline's paused"
            progress(f"starting the stack (Azurite, table proxy, Graph sandbox, {hosts})")
            stack.start()
            measure(stack, args, results)
        except RuntimeError as exc:
            progress(f"failed: {exc}")
            return 1
        finally:
            stack.stop()
    results.calibration = (calibrated, calibration())
    print(render(results, about, args.smoke))
    print(details(results))
    draw(results, args.png, about.split(", load")[0])
    progress(f"chart written to {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
