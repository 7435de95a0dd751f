"""The bench's output: Markdown tables (pasted as they are into docs/performance.md), every figure of the
bridge beside the naive handler's (and, with a baseline, beside the baseline commit's bridge's with the ratio
working tree / baseline), and the counters behind the per-event figures."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from devtools.bench.measure import (
    BASELINE,
    BRIDGE,
    NAIVE,
    NEW,
    UPDATE,
    WORKERS,
    Acks,
    ColdStart,
    Phase,
    Results,
)
from devtools.localstack.processes import ROOT


def machine() -> str:
    """Where the figures come from: CPU model and count, load when the run started, Python, commit."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        model = names[0] if names else model
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model}), load average {load} at the start, "
        f"Python {platform.python_version()}, commit {_commit()}"
    )


def calibration() -> float:
    """CPU seconds of a fixed loop, in this process: how much slower than usual the machine's cores
    are right now (other work, a busy sibling hyperthread). Figures in CPU time scale with it."""
    started = time.process_time()
    sum(range(10**7))
    return time.process_time() - started


def _commit() -> str:
    executable = shutil.which("git")

    def git(*args: str) -> str:
        if executable is None:
            return ""
        result = subprocess.run([executable, *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    return sha + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def render(results: Results, about: str, smoke: bool = False) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"Bench of {results.started:%Y-%m-%d %H:%M} UTC on {about}; load average {load} at the end."]
    if results.calibration:
        start, end = (f"{seconds * 1000:.0f}" for seconds in results.calibration)
        lines.append(
            f"Calibration: `sum(range(10**7))` took {start} ms of CPU at the start and {end} ms at the end "
            "(CPU figures scale with it)."
        )
    if results.baseline:
        sha, _, subject = results.baseline.partition(" ")
        lines.append(
            f"Baseline: commit {sha} ({subject}), measured in the same run on the same stack by a dev "
            "host of its own (the working tree's dev host code, the same settings); the two bridges take "
            "turns on the queue (the idle one paused), phases interleaved. Ratios: working tree / baseline."
        )
    if smoke:
        lines.append("Smoke run: too small for its figures to mean anything.")
    lines.append("")
    lines += _acks(results)
    lines += _queue_side(results)
    lines += _cold(results)
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(header), "| " + " | ".join("-" * w for w in widths) + " |", *map(line, rows), ""]


def _acks(results: Results) -> list[str]:
    by = {(a.system, a.senders): a for a in results.acks}
    baseline = any(a.system == BASELINE for a in results.acks)
    rows = []
    for senders in sorted({a.senders for a in results.acks}):
        bridge, naive = by[BRIDGE, senders], by[NAIVE, senders]
        rows.append(
            [
                f"{senders} sender{'s' if senders > 1 else ''} ({len(bridge.seconds)} requests)",
                *_ms(bridge),
                *(_ms(by[BASELINE, senders]) if baseline else []),
                *_ms(naive),
            ]
        )
    caption = (
        f"**Acknowledgement latency**, ms, at {results.ack_latency_ms} ms Graph latency: single-event "
        "webhooks for new activities, the bridge's 202 (once the event is queued; its queue side works "
        "through the same events meanwhile, in the same process) against the naive handler's 200 (once "
        "Graph is written)."
    )
    failures = [
        f"{a.system} with {a.senders} senders: {a.failures} failed" for a in results.acks if a.failures
    ]
    notes = [f"Failed requests (left out): {'; '.join(failures)}.", ""] if failures else []
    header = ["", "bridge p50", "bridge p99", *(["baseline p50", "baseline p99"] if baseline else [])]
    header += ["naive p50", "naive p99"]
    return [caption, "", *_table(header, rows), *notes]


def _ms(acks: Acks) -> list[str]:
    return [f"{acks.p50_ms:.0f}", f"{acks.p99_ms:.0f}"]


def _queue_side(results: Results) -> list[str]:
    by = {(p.system, p.kind, p.latency_ms): p for p in results.phases}
    baseline = any(p.system == BASELINE for p in results.phases)
    rows = []
    for kind in (NEW, UPDATE):
        for latency in sorted({p.latency_ms for p in results.phases}):
            rows.append(
                [
                    "new activity" if kind == NEW else "update",
                    f"{latency} ms",
                    *_queue_cells(
                        by[BRIDGE, kind, latency],
                        by[BASELINE, kind, latency] if baseline else None,
                        by[NAIVE, kind, latency],
                    ),
                ]
            )
    events = results.phases[0].events if results.phases else 0
    caption = (
        f"**Queue side**, {events} events a phase, per event unless said: the bridge's queue side takes "
        f"the events from the queue (up to {results.concurrency} messages at once, host.json batchSize "
        f"+ newBatchThreshold); the naive handler gets them as requests from {results.concurrency} "
        "concurrent senders. CPU from "
        "/proc of the dev host (worker) and Azurite; Table round trips counted by a proxy in front of "
        "Azurite's table endpoint; Graph calls counted by the sandbox. The naive handler uses no storage."
    )
    if baseline:
        sha = (results.baseline or "").split(" ")[0]
        caption += (
            f" Baseline: commit {sha}'s bridge on the same queue and Azurite, in a dev host of its own; "
            "ratio: working tree / baseline."
        )
    notes = [
        f"{p.system} {p.kind} at {p.latency_ms} ms: {'; '.join(p.notes)}"
        + (f"; {p.failures} requests failed" if p.failures else "")
        for p in results.phases
        if p.notes or p.failures
    ]
    table = _table(_queue_header(baseline), rows)
    return [caption, "", *table, *([*notes, ""] if notes else [])]


def _queue_header(baseline: bool) -> list[str]:
    def compared(name: str, prefix: str = "bridge ") -> list[str]:
        return [f"{prefix}{name}", *([f"baseline {name}", "ratio"] if baseline else [])]

    return [
        "",
        "Graph latency",
        *compared("events/s"),
        "naive events/s",
        *compared("worker CPU ms"),
        "naive worker CPU ms",
        *compared("Azurite CPU ms", prefix=""),
        *compared("Table round trips", prefix=""),
        *compared("Graph calls"),
        "naive Graph calls",
    ]


def _queue_cells(bridge: Phase, baseline: Phase | None, naive: Phase) -> list[str]:
    """One row's figures, in _queue_header's order: each of the bridge's followed (with a baseline)
    by the baseline's and the ratio of the two, measured in the same run."""

    def compared(value: Callable[[Phase], float], digits: int) -> list[str]:
        cells = [f"{value(bridge):.{digits}f}"]
        if baseline is not None:
            ratio = value(bridge) / value(baseline) if value(baseline) else float("nan")
            cells += [f"{value(baseline):.{digits}f}", f"{ratio:.2f}"]
        return cells

    return [
        *compared(_rate, 1),
        f"{naive.rate:.1f}",
        *compared(_worker_cpu, 1),
        f"{_worker_cpu(naive):.1f}",
        *compared(_azurite_cpu, 1),
        *compared(_tables, 1),
        *compared(_graph, 2),
        f"{_graph(naive):.2f}",
    ]


def _rate(phase: Phase) -> float:
    return phase.rate


def _worker_cpu(phase: Phase) -> float:
    """CPU ms per event of the process that served the phase (a dev host)."""
    return phase.per_event(phase.usage.cpu[WORKERS[phase.system]]) * 1000


def _azurite_cpu(phase: Phase) -> float:
    return phase.per_event(phase.usage.cpu["azurite"]) * 1000


def _tables(phase: Phase) -> float:
    return phase.per_event(sum(phase.usage.tables.values()))


def _graph(phase: Phase) -> float:
    return phase.per_event(sum(phase.usage.graph.values()))


def _cold(results: Results) -> list[str]:
    by = {c.system: c for c in results.cold}
    if not by:
        return []
    bridge, naive = by[BRIDGE], by[NAIVE]
    systems = [bridge, *([by[BASELINE]] if BASELINE in by else []), naive]
    rows = [
        [label, *(_s(pick(c)) for c in systems)]
        for label, pick in (
            ("import azure.functions (the Functions worker has it loaded)", _framework),
            ("import the app", _import),
            ("first message (naive: request), Graph client included", _first),
        )
    ]
    caption = (
        f"**Cold start**, ms, median of {bridge.runs} fresh interpreters, Graph latency 0: the bridge's "
        "first message through `apply_event` (learner and course looked up, GET, POST, its state rows); "
        "the naive handler's first request (signature, learner, course, GET, POST)."
    )
    header = ["", "bridge", *(["baseline"] if BASELINE in by else []), "naive"]
    return [caption, "", *_table(header, rows)]


def _framework(cold: ColdStart) -> float:
    return cold.framework_s


def _import(cold: ColdStart) -> float:
    return cold.import_s


def _first(cold: ColdStart) -> float:
    return cold.first_s


def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def details(results: Results) -> str:
    """The counters behind the per-event figures, by kind, and the CPU of the stand-ins (the Graph
    sandbox, the proxy): on a machine of few cores they share the CPU the systems measured need."""
    lines = ["Counters per event, by kind:"]
    for phase in results.phases:
        graph = _per_event(phase, phase.usage.graph)
        sandbox = phase.per_event(phase.usage.cpu["sandbox"]) * 1000
        lines.append(
            f"  {phase.system} {phase.kind} at {phase.latency_ms} ms: Graph {graph}; "
            f"sandbox CPU {sandbox:.1f} ms"
        )
        if phase.system != NAIVE:
            tables = _per_event(phase, phase.usage.tables)
            proxy = phase.per_event(phase.usage.cpu["proxy"]) * 1000
            lines.append(f"    Table {tables}; proxy CPU {proxy:.1f} ms")
    return "\n".join(lines)


def _per_event(phase: Phase, counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n / phase.events:.2f}" for kind, n in counts.most_common()) or "none"
