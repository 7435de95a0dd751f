"""The bench's measurements, each the bridge's beside the naive handler's on the same stack (and, with a
baseline, beside an older commit's bridge, served by a dev host of its own on the same stack):

- acknowledgement latency: signed single-event webhooks from K concurrent senders, time to the answer
  (the bridge's 202 after queuing; the naive handler's 200 after its Graph work);
- queue side: a phase of N events put on the queue at once (visible together), timed from the first
  record written to Graph to the last; the naive handler gets the same N events as requests from as
  many concurrent senders as the queue side processes messages at once;
- per event, from the meters across each phase: CPU of the dev host (worker) and of Azurite, Table
  round trips (the proxy) and Graph calls (the sandbox);
- cold start: fresh interpreters importing the app, then handling one message (one request for the
  naive handler), the Graph client's construction and first requests included.

Both bridges consume the same queue, so only one dev host runs at a time: the other is paused
(SIGSTOP) between its phases, once the queue is empty (see `Bench.activate`).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from devtools.bench.stack import BASELINE_SERVICE, BenchStack, Usage
from devtools.bench.workload import Workload, enqueue, queue_message
from devtools.localstack.processes import ROOT
from shared.events.names import EVENTS_QUEUE
from shared.sources.formats.generic import signed_headers

BRIDGE, BASELINE, NAIVE = "bridge", "baseline", "naive"
NEW, UPDATE = "new", "update"
#: The process whose CPU is each system's worker CPU (BenchStack.services names).
WORKERS = {BRIDGE: "devhost", BASELINE: BASELINE_SERVICE, NAIVE: "naive"}
_POLL = 0.1
#: How long a resumed dev host gets before its phase: its poll loop's timers are all overdue, its
#: kept-alive connections to Azurite may have been closed meanwhile and are reopened.
_RESUMED_SECONDS = 1.0


@dataclass(frozen=True)
class Acks:
    system: str
    senders: int
    seconds: list[float]
    failures: int

    @property
    def p50_ms(self) -> float:
        return percentile(self.seconds, 0.50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.seconds, 0.99) * 1000


@dataclass(frozen=True)
class Phase:
    system: str
    kind: str
    latency_ms: int
    events: int
    rate: float
    usage: Usage
    failures: int = 0
    notes: tuple[str, ...] = ()

    def per_event(self, value: float) -> float:
        return value / self.events


@dataclass(frozen=True)
class ColdStart:
    system: str
    runs: int
    framework_s: float  # azure.functions, which the Functions worker has loaded before the app
    import_s: float  # the app's module, framework already loaded
    first_s: float  # the first message (or request) handled, Graph client included


@dataclass
class Results:
    started: datetime
    concurrency: int  # the queue side's messages at once, and the naive handler's senders
    cold: list[ColdStart] = field(default_factory=list)
    acks: list[Acks] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    ack_latency_ms: int = 50
    #: The baseline commit (`git log -1 --format='%h %s'`) when one was measured beside the tree.
    baseline: str | None = None
    #: CPU seconds of a fixed loop at the start and at the end of the run (report.calibration).
    calibration: tuple[float, float] | None = None


def percentile(values: list[float], q: float) -> float:
    """Nearest rank; with fewer than 100 values p99 is the maximum."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Bench:
    def __init__(self, stack: BenchStack, workload: Workload, concurrency: int) -> None:
        self.stack = stack
        self.workload = workload
        self.concurrency = concurrency
        self.enqueue_rate = 200.0  # messages a second; measured by warm_up
        #: The bridges measured: the working tree's, then the baseline's if the stack serves one.
        self.bridges = (BRIDGE, BASELINE) if stack.baseline_tree is not None else (BRIDGE,)
        self.active = BRIDGE  # the bridge whose dev host runs (the stack starts the baseline's paused)

    def url(self, system: str) -> str:
        return {BRIDGE: self.stack.bridge, BASELINE: self.stack.baseline, NAIVE: self.stack.naive}[system]

    def activate(self, system: str) -> None:
        """Make `system`'s dev host the one consuming the queue. The other is paused only once the
        queue is empty: then every message it took is deleted, it holds none that would wait out a
        lease meanwhile (the previous phase settled before this is called)."""
        if system == self.active:
            return
        deadline = time.monotonic() + 60
        while self.stack.queue_depth(EVENTS_QUEUE) and time.monotonic() < deadline:
            time.sleep(_POLL)
        if self.stack.queue_depth(EVENTS_QUEUE):
            raise RuntimeError(f"the queue did not empty before switching to {system}")
        self.stack.pause(WORKERS[self.active])
        self.stack.resume(WORKERS[system])
        self.active = system
        time.sleep(_RESUMED_SECONDS)

    # -- warming up -------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Fill each bridge's caches (every learner and course once; the caches are per process, so
        each bridge gets warm-up pairs of its own while it is the active one) and build the Graph
        clients, so the phases measure the steady state; measure how fast events go on the queue."""
        self.stack.faults()
        for generation, system in enumerate(self.bridges):
            self.activate(system)
            events = [self.workload.event(pair, 10) for pair in self.workload.warm_pairs(generation)]
            base = self.stack.graph_writes()
            started = time.perf_counter()
            enqueue(self.stack.ports.connection_string(), events, delay=0)
            self.enqueue_rate = len(events) / (time.perf_counter() - started)
            self._wait_writes(base + len(events), timeout=120 + len(events), service=WORKERS[system])
            self._settle()
        naive_events = [self.workload.event(p, 10) for p in self.workload.fresh(2)]
        results = asyncio.run(_post_all(self.stack.naive, self.stack.secret, naive_events, 1))
        if any(status != 200 for _, status in results):
            raise RuntimeError(f"the naive handler failed its warm-up: {results}{self._log('naive')}")

    # -- acknowledgement latency ------------------------------------------------------------------

    def acks(self, senders: int, requests: int) -> list[Acks]:
        """Every system: `requests` single-event webhooks (new activities) from `senders` at once."""
        measured = []
        for system in (*self.bridges, NAIVE):
            if system != NAIVE:
                self.activate(system)
            events = [self.workload.event(p, 20) for p in self.workload.fresh(requests)]
            base = self.stack.graph_writes()
            results = asyncio.run(_post_all(self.url(system), self.stack.secret, events, senders))
            ok = [seconds for seconds, status in results if status in (200, 202)]
            measured.append(Acks(system, senders, ok, len(results) - len(ok)))
            if system != NAIVE:  # let the queue side finish before the next measurement
                self._wait_writes(base + len(ok), timeout=120 + len(ok), service=WORKERS[system])
                self._settle()
        return measured

    # -- queue side -------------------------------------------------------------------------------

    def queue_side(self, latency_ms: int, events: int) -> list[Phase]:
        """New activities then an update of each, bridge (then baseline) then naive, at one Graph
        latency; each system on pairs of its own."""
        self.stack.faults(latencyMs=latency_ms)
        phases = []
        for system in (*self.bridges, NAIVE):
            pairs = self.workload.fresh(events)
            new = [self.workload.event(p, 20) for p in pairs]
            phases.append(self._phase(system, NEW, latency_ms, new))
            updates = [self.workload.event(p, 80, late=True) for p in pairs]
            phases.append(self._phase(system, UPDATE, latency_ms, updates))
        return phases

    def _phase(self, system: str, kind: str, latency_ms: int, events: list[dict[str, Any]]) -> Phase:
        if system == NAIVE:
            return self._naive_phase(kind, latency_ms, events)
        self.activate(system)
        return self._bridge_phase(system, kind, latency_ms, events)

    def _bridge_phase(self, system: str, kind: str, latency_ms: int, events: list[dict[str, Any]]) -> Phase:
        count = len(events)
        delay = max(1, math.ceil(2 * count / self.enqueue_rate + 1))
        base = self.stack.graph_writes()
        started = time.perf_counter()
        enqueue(self.stack.ports.connection_string(), events, delay)
        visible_at = started + delay
        before = self.stack.read()
        notes = ("enqueuing overran the visibility delay",) if before.at > visible_at else ()
        timeout = 60 + count * (1 + latency_ms / 100)
        progress = self._wait_writes(base + count, timeout, service=WORKERS[system])
        self._settle()
        usage = before.until(self.stack.read())
        rate = _rate(progress, base, count, visible_at, self.concurrency)
        return Phase(system, kind, latency_ms, count, rate, usage, notes=notes)

    def _naive_phase(self, kind: str, latency_ms: int, events: list[dict[str, Any]]) -> Phase:
        before = self.stack.read()
        results = asyncio.run(_post_all(self.stack.naive, self.stack.secret, events, self.concurrency))
        usage = before.until(self.stack.read())
        ok = sum(1 for _, status in results if status == 200)
        return Phase(NAIVE, kind, latency_ms, len(events), ok / usage.seconds, usage, len(events) - ok)

    def _wait_writes(self, target: int, timeout: float, service: str) -> list[tuple[float, int]]:
        """Poll the sandbox's write counter until it reaches `target`: (time, count) samples."""
        samples: list[tuple[float, int]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            samples.append((time.perf_counter(), self.stack.graph_writes()))
            if samples[-1][1] >= target:
                return samples
            time.sleep(_POLL)
        raise RuntimeError(
            f"only {samples[-1][1]} of {target} records were written to Graph after {timeout:.0f} s"
            f"{self._log(service)}"
        )

    def _settle(self, quiet: float = 0.5, timeout: float = 10.0) -> None:
        """Wait until the bridge's table traffic stops: the last writes follow the last Graph call."""
        deadline = time.monotonic() + timeout
        last, since = self.stack.table_calls(), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet:
            time.sleep(quiet / 4)
            now = self.stack.table_calls()
            if now != last:
                last, since = now, time.monotonic()

    def _log(self, service: str) -> str:
        path = self.stack.services[service].log_path
        if path is None or not path.exists():
            return ""
        return "\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:])

    # -- cold start -------------------------------------------------------------------------------

    def cold_start(self, runs: int) -> list[ColdStart]:
        """Fresh interpreters: each bridge's in its own tree (cwd and PYTHONPATH, so only that tree's
        code is imported), the bridges alternating run by run; then the naive handler's."""
        self.stack.faults()
        trees = {BRIDGE: ROOT, BASELINE: self.stack.baseline_tree or ROOT}
        timings: dict[str, list[tuple[float, float, float]]] = {s: [] for s in (*self.bridges, NAIVE)}
        for _ in range(runs):
            for system in self.bridges:
                (pair,) = self.workload.fresh(1)
                message = queue_message(self.workload.event(pair, 10))
                env = {**os.environ, **self.stack.settings_values, "PYTHONPATH": str(trees[system])}
                timings[system].append(_child(_BRIDGE_COLD, [message], env, cwd=trees[system]))
        naive_env = {**os.environ, **self.stack.naive_settings}
        for pair in self.workload.fresh(runs):
            body = json.dumps(self.workload.event(pair, 10))
            headers = signed_headers(body.encode(), self.stack.secret, f"msg_{uuid.uuid4().hex}", _now())
            timings[NAIVE].append(_child(_NAIVE_COLD, [body, json.dumps(headers)], naive_env))
        return [_cold(system, runs_of) for system, runs_of in timings.items()]


def _rate(
    progress: list[tuple[float, int]], base: int, count: int, visible_at: float, concurrency: int
) -> float:
    """Events a second from the first record seen written to the last. Before the first, the queue
    poller may still be backing off after the idle pause (up to maxPollingInterval): latency, not
    throughput. A phase of a few batches only (a smoke run) is timed from when it became visible."""
    done_at = progress[-1][0]
    first_at, first = next((t, n - base) for t, n in progress if n > base)
    if count >= 4 * concurrency and done_at > first_at:
        return (count - first) / (done_at - first_at)
    return count / max(done_at - visible_at, 1e-3)


def _now() -> datetime:
    return datetime.now(UTC)


async def _post_all(
    url: str, secret: str, events: list[dict[str, Any]], senders: int
) -> list[tuple[float, int]]:
    """Each event as one signed webhook, from `senders` concurrent senders: (seconds, status) each."""
    pending = list(reversed(events))
    results: list[tuple[float, int]] = []
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def sender() -> None:
            while pending:
                body = json.dumps(pending.pop()).encode()
                headers = signed_headers(body, secret, f"msg_{uuid.uuid4().hex}", _now())
                started = time.perf_counter()
                try:
                    status = (
                        await client.post(f"{url}/webhooks/generic", content=body, headers=headers)
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                results.append((time.perf_counter() - started, status))

        await asyncio.gather(*(sender() for _ in range(senders)))
    return results


_BRIDGE_COLD = """
import asyncio, sys, time
t0 = time.perf_counter()
import azure.functions
t1 = time.perf_counter()
import function_app
t2 = time.perf_counter()
from azure.functions.queue import QueueMessage
message = QueueMessage(id="cold-start", body=sys.argv[1].encode(), dequeue_count=1)
asyncio.run(function_app.apply_event(message))
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""

_NAIVE_COLD = """
import asyncio, json, sys, time
t0 = time.perf_counter()
import azure.functions as func
t1 = time.perf_counter()
from devtools.bench import naive
t2 = time.perf_counter()
request = func.HttpRequest(
    "POST", "http://127.0.0.1/api/webhooks/generic", headers=json.loads(sys.argv[2]),
    route_params={"source": "generic"}, body=sys.argv[1].encode(),
)
response = asyncio.run(naive.webhook(request))
t3 = time.perf_counter()
assert response.status_code == 200, response.status_code
print(t1 - t0, t2 - t1, t3 - t2)
"""


def _child(code: str, args: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, float, float]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"cold start run failed:\n{result.stderr[-3000:]}")
    framework, imported, first = (float(x) for x in result.stdout.split()[-3:])
    return framework, imported, first


def _cold(system: str, runs: list[tuple[float, float, float]]) -> ColdStart:
    def median(pick: Callable[[tuple[float, float, float]], float]) -> float:
        return statistics.median(pick(r) for r in runs)

    return ColdStart(
        system, len(runs), median(lambda r: r[0]), median(lambda r: r[1]), median(lambda r: r[2])
    )


def pairs_needed(
    ack_requests: list[int], events: int, latencies: int, cold_runs: int, systems: int = 2
) -> int:
    """Distinct (learner, course) pairs the run uses: every new activity has its own. `systems`: the
    naive handler and the bridges (two with a baseline)."""
    return systems * (sum(ack_requests) + events * latencies + cold_runs) + 2
