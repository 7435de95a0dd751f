"""The bench's output: Markdown tables (pasted as they are into the README), every figure of the bridge
beside the naive handler's, and the counters behind the per-event figures."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

from devtools.bench.measure import BRIDGE, NAIVE, NEW, UPDATE, Acks, Phase, Results
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
    rows = []
    for senders in sorted({a.senders for a in results.acks}):
        bridge, naive = by[BRIDGE, senders], by[NAIVE, senders]
        rows.append(
            [
                f"{senders} sender{'s' if senders > 1 else ''} ({len(bridge.seconds)} requests)",
                *_ms(bridge),
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
    header = ["", "bridge p50", "bridge p99", "naive p50", "naive p99"]
    return [caption, "", *_table(header, rows), *notes]


def _ms(acks: Acks) -> list[str]:
    return [f"{acks.p50_ms:.0f}", f"{acks.p99_ms:.0f}"]


def _queue_side(results: Results) -> list[str]:
    by = {(p.system, p.kind, p.latency_ms): p for p in results.phases}
    rows = []
    for kind in (NEW, UPDATE):
        for latency in sorted({p.latency_ms for p in results.phases}):
            bridge, naive = by[BRIDGE, kind, latency], by[NAIVE, kind, latency]
            rows.append(
                [
                    "new activity" if kind == NEW else "update",
                    f"{latency} ms",
                    f"{bridge.rate:.1f}",
                    f"{naive.rate:.1f}",
                    _cpu(bridge, "devhost"),
                    _cpu(naive, "naive"),
                    _cpu(bridge, "azurite"),
                    f"{bridge.per_event(sum(bridge.usage.tables.values())):.1f}",
                    f"{bridge.per_event(sum(bridge.usage.graph.values())):.2f}",
                    f"{naive.per_event(sum(naive.usage.graph.values())):.2f}",
                ]
            )
    events = results.phases[0].events if results.phases else 0
    caption = (
        f"**Queue side**, {events} events a phase, per event unless said: the bridge's queue side takes "
        f"the events from the queue ({results.concurrency} messages at once, host.json batchSize); the "
        f"naive handler gets them as requests from {results.concurrency} concurrent senders. CPU from "
        "/proc of the dev host (worker) and Azurite; Table round trips counted by a proxy in front of "
        "Azurite's table endpoint; Graph calls counted by the sandbox. The naive handler uses no storage."
    )
    header = [
        "",
        "Graph latency",
        "bridge events/s",
        "naive events/s",
        "bridge worker CPU ms",
        "naive worker CPU ms",
        "Azurite CPU ms",
        "Table round trips",
        "bridge Graph calls",
        "naive Graph calls",
    ]
    notes = [
        f"{p.system} {p.kind} at {p.latency_ms} ms: {'; '.join(p.notes)}"
        + (f"; {p.failures} requests failed" if p.failures else "")
        for p in results.phases
        if p.notes or p.failures
    ]
    return [caption, "", *_table(header, rows), *([*notes, ""] if notes else [])]


def _cpu(phase: Phase, process: str) -> str:
    return f"{phase.per_event(phase.usage.cpu[process]) * 1000:.1f}"


def _cold(results: Results) -> list[str]:
    by = {c.system: c for c in results.cold}
    if not by:
        return []
    bridge, naive = by[BRIDGE], by[NAIVE]
    rows = [
        [
            "import azure.functions (the Functions worker has it loaded)",
            _s(bridge.framework_s),
            _s(naive.framework_s),
        ],
        ["import the app", _s(bridge.import_s), _s(naive.import_s)],
        ["first message (naive: request), Graph client included", _s(bridge.first_s), _s(naive.first_s)],
    ]
    caption = (
        f"**Cold start**, ms, median of {bridge.runs} fresh interpreters, Graph latency 0: the bridge's "
        "first message through `apply_event` (learner and course looked up, GET, POST, its state rows); "
        "the naive handler's first request (signature, learner, course, GET, POST)."
    )
    return [caption, "", *_table(["", "bridge", "naive"], rows)]


def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def details(results: Results) -> str:
    """The counters behind the per-event figures, by kind, and the proxy's own CPU."""
    lines = ["Counters per event, by kind:"]
    for phase in results.phases:
        graph = _per_event(phase, phase.usage.graph)
        lines.append(f"  {phase.system} {phase.kind} at {phase.latency_ms} ms: Graph {graph}")
        if phase.system == BRIDGE:
            tables = _per_event(phase, phase.usage.tables)
            proxy = phase.per_event(phase.usage.cpu["proxy"]) * 1000
            lines.append(f"    Table {tables}; proxy CPU {proxy:.1f} ms")
    return "\n".join(lines)


def _per_event(phase: Phase, counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n / phase.events:.2f}" for kind, n in counts.most_common()) or "none"
