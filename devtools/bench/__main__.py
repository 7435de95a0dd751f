"""`python -m devtools.bench [--events N]`: cold-start and end-to-end latency figures, on this machine.

1. Import time of azure.functions alone and of function_app, medians of fresh interpreters (measured
   as `python -m devtools.coldstart` does, which also times the first webhook), beside the one-off cost
   of the Graph client the queue side pays on first use.
2. Webhook to Graph: on a fresh local stack (Azurite, the sandbox, the dev host), N events sent one
   at a time; for each, the time of the 202 answer and the time from the 202 to the record being
   visible in the sandbox. Then one batch of N events in a single webhook, until all are visible.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from devtools.coldstart import Figures, child_env, measure_import
from devtools.localstack.processes import ROOT
from devtools.localstack.settings import new_webhook_secret
from devtools.localstack.stack import LocalStack, wait_for

_GRAPH_FIRST_USE = """
import asyncio, time
import function_app
t = time.perf_counter()
worker = function_app.bridge.get().worker()
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
    env = child_env(stack.settings_values)
    alone, app = Figures("import azure.functions"), Figures("import function_app")
    for _ in range(runs):
        measure_import(alone, "azure.functions", ROOT, env)
        measure_import(app, "function_app", ROOT, env)
    print(_summary(alone.label, alone.imports))
    print(
        _summary(app.label, app.imports)
        + f"  ({statistics.median(app.imports) / statistics.median(alone.imports):.2f}x azure.functions)"
    )
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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--import-runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        stack = LocalStack(Path(workdir), new_webhook_secret())
        try:
            stack.start()
            bench_imports(stack, args.import_runs)
            bench_latency(stack, args.events)
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
