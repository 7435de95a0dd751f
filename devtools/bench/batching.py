"""`python -m devtools.bench.batching`: what Graph JSON batching buys the operators' bulk commands.

On a fresh local stack: R records read back through the msgraph gateway one at a time, then in JSON
batches of 20, with the sandbox answering at once and then with a latency per round trip; the
`reconcile` command itself over R records applied through the bridge; `catalog push` of R new courses.
(`make bench` is the queue side and the webhook beside a naive handler; this is the CLI's side.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.batching", description=__doc__)
    parser.add_argument("--records", type=int, default=200, help="records read back")
    parser.add_argument("--latency-ms", type=int, default=50, help="sandbox latency a trip")
    parser.add_argument("--parts", default="reads,catalog", help="reads, catalog or both (default)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as workdir:
        stack = LocalStack(Path(workdir), new_webhook_secret())
        try:
            stack.start()
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
