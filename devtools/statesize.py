"""`python -m devtools.statesize`: the operations figures docs/performance.md quotes, measured on a fresh
local stack (Azurite in memory, the seeded sandbox, the dev host).

1. Import rate: a JSON Lines file of `--import-events` canonical events (many learners and courses) is
   queued by `python -m shared.cli import` at an unbounded `--rate`, with the dev host stopped, so the
   figure is the import's own (reading, validating, queuing), not the queue side's.
2. State sizes: `--apply-events` events (several per activity) are imported with the dev host running
   and applied; then `compact --days 0 --sizes` shows each state table before and after retention, and
   every record in the sandbox is compared before and after (none may change).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from devtools.faultrun import drain
from devtools.localstack.processes import ROOT
from devtools.localstack.settings import new_webhook_secret
from devtools.localstack.stack import PROVIDER_ID, LocalStack


def write_events(path: Path, events: int, learners: int, courses: int, rng: random.Random) -> None:
    """Progress then completion per (learner, course), in time order, as an LMS report would list it."""
    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as out:
        for n in range(events):
            learner, course = n % learners, (n // learners) % courses
            step = n // (learners * courses)
            done = step >= 3
            line: dict[str, Any] = {
                "eventId": f"hist-{n}",
                "occurredAt": (start + timedelta(minutes=n)).isoformat(),
                "learner": {"email": f"learner{learner:05d}@contoso.example"},
                "course": {"externalId": f"hist-course-{course:03d}"},
                "status": "completed" if done else "inProgress",
            }
            if not done:
                line["completionPercentage"] = min(99, 10 + 25 * step + rng.randint(0, 9))
            out.write(json.dumps(line) + "\n")


def seed(stack: LocalStack, learners: int, courses: int) -> None:
    users = [
        {
            "userPrincipalName": f"learner{n:05d}@contoso.example",
            "mail": f"learner{n:05d}@contoso.example",
            "displayName": f"Learner {n}",
        }
        for n in range(learners)
    ]
    contents = [
        {
            "externalId": f"hist-course-{c:03d}",
            "title": f"Course {c}",
            "languageTag": "en-us",
            "contentWebUrl": f"https://academy.contoso.example/{c}",
        }
        for c in range(courses)
    ]
    httpx.post(
        f"{stack.sandbox}/_sandbox/seed",
        json={"users": users, "contents": {PROVIDER_ID: contents}},
        timeout=120,
    ).raise_for_status()


def cli(stack: LocalStack, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "--settings", str(stack.settings_file), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed: {result.stderr.strip()[-500:]}")
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def import_rate(workdir: Path, events: int, rng: random.Random) -> None:
    path = workdir / "history.jsonl"
    write_events(path, events, learners=5000, courses=300, rng=rng)
    stack = LocalStack(workdir / "import", new_webhook_secret())
    (workdir / "import").mkdir()
    try:
        stack.settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": stack.settings_values}))
        stack.start_azurite()  # no dev host: the queue only fills
        started = time.perf_counter()
        summary = cli(stack, "import", "--source", "generic", "--rate", "1000000", "--json", str(path))
        elapsed = time.perf_counter() - started
        size = path.stat().st_size / 1e6
        print(
            f"import: {summary['accepted']} events ({size:.0f} MB) queued in {elapsed:.1f} s: "
            f"{summary['accepted'] / elapsed:,.0f} events/s"
        )
    finally:
        stack.stop()


def state_sizes(workdir: Path, events: int, rng: random.Random) -> None:
    learners, courses = max(1, events // 20), 5  # four events per activity
    path = workdir / "applied.jsonl"
    write_events(path, events, learners, courses, rng)
    (workdir / "apply").mkdir()
    stack = LocalStack(workdir / "apply", new_webhook_secret())
    stack.devhost_env = {"DEVHOST_LOG_LEVEL": "WARNING"}
    try:
        stack.start()
        seed(stack, learners, courses)
        started = time.perf_counter()
        cli(stack, "import", "--source", "generic", "--rate", "1000000", "--json", str(path))
        drain(stack, timeout=3600)
        applied = time.perf_counter() - started
        before = {r["id"]: r for r in stack.activities()}
        time.sleep(1)
        figures = cli(stack, "compact", "--days", "0", "--sizes", "--json")
        after = {r["id"]: r for r in stack.activities()}
        print(
            f"applied {events} events ({len(before)} records) in {applied:.0f} s; compact: "
            + ", ".join(f"{k}={v}" for k, v in figures.items() if not k.startswith("sizes"))
        )
        for table, rows in figures["sizesBefore"].items():
            print(f"  {table:<12} {rows:>8} -> {figures['sizesAfter'][table]:>8} rows")
        print(f"records unchanged: {before == after}")
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.statesize", description=__doc__)
    parser.add_argument("--import-events", type=int, default=100_000)
    parser.add_argument("--apply-events", type=int, default=4_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as workdir:
        if args.import_events:
            import_rate(Path(workdir), args.import_events, rng)
        if args.apply_events:
            state_sizes(Path(workdir), args.apply_events, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
