"""`python -m devtools.bench [--events N]`: cold-start and end-to-end latency figures, on this machine.

1. Import time of function_app (what an HTTP cold start pays), median of fresh interpreters, beside
   the one-off cost of the Graph client the queue side pays on first use.
2. Webhook to Graph: on a fresh local stack (Azurite, the sandbox, the dev host), N events sent one
   at a time; for each, the time of the 202 answer and the time from the 202 to the record being
   visible in the sandbox. Then one batch of N events in a single webhook, until all are visible.
3. Reading records back (what `reconcile` does): R records read through the msgraph gateway one at a
   time, then in JSON batches of 20, with the sandbox answering at once and then with a latency per
   round trip; then the `reconcile` command itself over R records applied through the bridge.
4. `catalog push` of a catalog of R new courses, with the sandbox answering at once, then after a
   latency per round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from devtools.localstack.processes import ROOT
from devtools.localstack.settings import new_webhook_secret
from devtools.localstack.stack import PROVIDER_ID, LocalStack, wait_for
from shared.graph.gateway import ActivityRecord, LearningGraph
from shared.operations.batching import in_batches

ADA = "4a1f3c2e-8b7d-4e6a-9f05-1c2d3e4f5a6b"  # the demo seed's learner

_IMPORT = """
import time, os
t = time.perf_counter()
import function_app
print(time.perf_counter() - t)
"""
_GRAPH_FIRST_USE = """
import asyncio, time
import function_app
t = time.perf_counter()
worker = function_app.bridge.worker()
built = time.perf_counter() - t
async def first_call():
    await worker._upserter._graph.find_content_id("course-101")
t = time.perf_counter()
asyncio.run(first_call())
print(built, time.perf_counter() - t)
"""


def _python(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<34} n={len(ms):<4} median={statistics.median(ms):7.1f} ms  "
        f"p95={_pct(ms, 0.95):7.1f} ms  max={max(ms):7.1f} ms"
    )


def bench_imports(stack: LocalStack, runs: int) -> None:
    import os

    env = {**os.environ, **stack.settings_values}
    times = [float(_python(_IMPORT, env)) for _ in range(runs)]
    print(_summary("import function_app", times))
    built, first = (float(x) for x in _python(_GRAPH_FIRST_USE, env).split())
    print(
        f"{'Graph client, first use (once)':<34} build={built * 1000:.0f} ms  "
        f"first request={first * 1000:.0f} ms"
    )


def _event(activity_id: str) -> dict[str, object]:
    return {
        "eventId": f"bench-{uuid.uuid4()}",
        "occurredAt": datetime.now(UTC).isoformat(),
        "learner": {"email": "ada.lovelace@contoso.example"},
        "course": {"externalId": "course-101"},
        "status": "inProgress",
        "completionPercentage": 50,
        "externalCourseActivityId": activity_id,
    }


def bench_latency(stack: LocalStack, events: int) -> None:
    warm = f"bench-warm-{uuid.uuid4()}"
    stack.send(_event(warm))
    wait_for(lambda: stack.activity(warm), timeout=60, what="the warm-up event")
    answer, visible = [], []
    for _ in range(events):
        activity_id = f"bench-{uuid.uuid4()}"
        started = time.perf_counter()
        response = stack.send(_event(activity_id))
        accepted = time.perf_counter()
        assert response.status_code == 202, response.text
        wait_for(lambda: stack.activity(activity_id), timeout=60, what=activity_id)  # noqa: B023
        answer.append(accepted - started)
        visible.append(time.perf_counter() - accepted)
    print(_summary("webhook answered (202)", answer))
    print(_summary("202 -> record in Graph (one event)", visible))
    ids = [f"bench-{uuid.uuid4()}" for _ in range(events)]
    started = time.perf_counter()
    response = stack.send([_event(a) for a in ids])
    accepted = time.perf_counter()
    assert response.status_code == 202, response.text
    for activity_id in ids:
        wait_for(lambda: stack.activity(activity_id), timeout=120, what=activity_id)  # noqa: B023
    done = time.perf_counter()
    print(
        f"{f'batch of {events} in one webhook':<34} 202 after {(accepted - started) * 1000:.0f} ms, "
        f"all in Graph {(done - accepted):.2f} s later ({events / (done - accepted):.0f} events/s)"
    )


def _create_records(stack: LocalStack, count: int) -> list[str]:
    """Course activities straight into the sandbox (as a tool looking on: no faults), their ids."""
    headers = {"x-sandbox-client": "bench"}
    provider = f"{stack.sandbox}/v1.0/employeeExperience/learningProviders/{PROVIDER_ID}"
    content = httpx.get(f"{provider}/learningContents(externalId='course-101')", headers=headers, timeout=10)
    ids = [f"bench-read-{uuid.uuid4()}" for _ in range(count)]
    with httpx.Client(headers=headers, timeout=10) as client:
        for external_id in ids:
            body = {
                "@odata.type": "#microsoft.graph.learningSelfInitiatedCourse",
                "externalcourseActivityId": external_id,
                "learnerUserId": ADA,
                "learningContentId": content.json()["id"],
                "status": "inProgress",
            }
            client.post(f"{provider}/learningCourseActivities", json=body).raise_for_status()
    return ids


async def _read_back(graph: LearningGraph, ids: list[str], batched: bool) -> float:
    started = time.perf_counter()
    if batched:
        found = [a async for _, a in in_batches(ids, graph.get_activities)]
    else:
        found = [await graph.get_activity(external_id) for external_id in ids]
    assert all(isinstance(record, ActivityRecord) for record in found)
    return time.perf_counter() - started


def bench_reads(stack: LocalStack, records: int, latency_ms: int) -> None:
    from shared.config.settings import load_settings
    from shared.graph.msgraph_gateway import build_learning_graph

    ids = _create_records(stack, records)

    async def run() -> None:  # one event loop: the client's connections belong to it
        graph = build_learning_graph(load_settings(stack.settings_values))
        await _read_back(graph, ids[:5], batched=False)  # the client's first use, not counted
        for latency in (0, latency_ms):
            stack.faults(latencyMs=latency)
            one = await _read_back(graph, ids, batched=False)
            batched = await _read_back(graph, ids, batched=True)
            print(
                f"{f'read back {records}, {latency} ms a trip':<34} one at a time {one:6.2f} s "
                f"({records / one:5.0f}/s)   in batches of 20 {batched:6.2f} s ({records / batched:5.0f}/s)"
            )

    asyncio.run(run())
    stack.faults()


def bench_reconcile(stack: LocalStack, records: int, latency_ms: int) -> None:
    events = [_event(f"bench-rc-{uuid.uuid4()}") for _ in range(records)]
    for start in range(0, records, 100):
        response = stack.send(events[start : start + 100])
        assert response.status_code == 202, response.text
    for event in events:
        event_id = str(event["eventId"])
        wait_for(lambda: stack.activity_of("generic", event_id), timeout=300, what=event_id)  # noqa: B023
    command = [sys.executable, "-m", "shared.cli", "--settings", str(stack.settings_file)]
    for latency in (0, latency_ms):
        stack.faults(latencyMs=latency)
        started = time.perf_counter()
        result = subprocess.run(
            [*command, "reconcile", "--json", "--rate", "1000"], cwd=ROOT, capture_output=True, text=True
        )
        took = time.perf_counter() - started
        checked = json.loads(result.stdout)["checked"] if result.returncode == 0 else result.stderr
        print(
            f"{f'reconcile, {latency} ms a trip':<34} checked={checked} in {took:.2f} s "
            "(the command, start-up included; --rate 1000)"
        )
    stack.faults()


def bench_catalog(stack: LocalStack, entries: int, latency_ms: int, workdir: Path) -> None:
    command = [sys.executable, "-m", "shared.cli", "--settings", str(stack.settings_file)]
    for latency in (0, latency_ms):
        stack.faults(latencyMs=latency)
        catalog = workdir / f"catalog-{uuid.uuid4().hex[:8]}.csv"
        rows = "".join(f"{catalog.stem}-{n},Course {n},https://x.example/{n},en-us\n" for n in range(entries))
        catalog.write_text("externalId,title,contentWebUrl,languageTag\n" + rows, encoding="utf-8")
        started = time.perf_counter()
        result = subprocess.run(
            [*command, "catalog", "push", "--json", str(catalog)], cwd=ROOT, capture_output=True, text=True
        )
        took = time.perf_counter() - started
        created = json.loads(result.stdout)["created"] if result.returncode == 0 else result.stderr
        print(
            f"{f'catalog push, {latency} ms a trip':<34} created={created} in {took:.2f} s "
            "(the command, start-up included)"
        )
    stack.faults()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument("--records", type=int, default=200, help="records read back (part 3)")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency a trip (part 3)")
    parser.add_argument(
        "--parts",
        default="imports,latency,reads,catalog",
        help="which parts, comma-separated (default: all)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as workdir:
        stack = LocalStack(Path(workdir), new_webhook_secret())
        try:
            stack.start()
            if "imports" in parts:
                bench_imports(stack, args.import_runs)
            if "latency" in parts:
                bench_latency(stack, args.events)
            if "reads" in parts:
                bench_reads(stack, args.records, args.latency_ms)
                bench_reconcile(stack, args.records, args.latency_ms)
            if "catalog" in parts:
                bench_catalog(stack, args.records, args.latency_ms, Path(workdir))
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
