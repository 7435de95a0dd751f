"""`python -m devtools.faultrun [--events 3000]`: prove that no completion is lost, duplicated or wrong
when everything goes wrong at once.

On a fresh local stack (Azurite on disk, the Graph sandbox, the dev host), it sends events for many
learners and courses, every delivery duplicated at random and the order shuffled, while the sandbox
injects 429s with Retry-After, 503s, timeouts and latency; the dev host is killed and restarted
mid-run and Azurite is restarted once. Some events name learners who do not exist. At the end it
compares every course activity in the sandbox with the merge of its events and prints:

    sent=… accepted=… applied=… deduplicated=… parked=… deadlettered=… missing=0 duplicated=0 wrong=0

and the Graph calls per applied event (the sandbox's own count, injected failures excluded).
Exit status 1 when anything is missing, duplicated or wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from devtools.localstack.processes import azurite
from devtools.localstack.settings import new_webhook_secret
from devtools.localstack.stack import PROVIDER_ID, LocalStack
from shared.delivery.merge import contribution, fold
from shared.events.model import CanonicalEvent
from shared.events.queue import EVENTS_QUEUE
from shared.graph.gateway import record_from_json
from shared.state.store import TableStateStore

FAULTS = {
    "latencyMs": 2,
    "latencyJitterMs": 10,
    "rate429": 0.04,
    "rate503": 0.03,
    "rateTimeout": 0.005,
    "timeoutSeconds": 3,
    "retryAfterSeconds": 1,
}


@dataclass
class Plan:
    events: list[dict[str, Any]]
    deliveries: list[list[dict[str, Any]]]
    known_learners: set[str]
    unknown_learners: set[str]


@dataclass
class Tally:
    posts: int = 0
    accepted: int = 0
    retries: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


def build_plan(events: int, learners: int, courses: int, rng: random.Random) -> Plan:
    known = {f"learner{i:04d}@fault.example" for i in range(learners)}
    unknown = {f"ghost{i:03d}@fault.example" for i in range(max(1, learners // 25))}
    people = sorted(known) + sorted(unknown)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    made = []
    for index in range(events):
        learner = rng.choice(people)
        course = f"fault-course-{rng.randrange(courses):03d}"
        occurred = start + timedelta(minutes=rng.randrange(60 * 24 * 20))
        status = rng.choices(["inProgress", "completed", "notStarted"], weights=[70, 25, 5])[0]
        body: dict[str, Any] = {
            "eventId": f"fault-{index:06d}",
            "occurredAt": occurred.isoformat(),
            "learner": {"email": learner},
            "course": {"externalId": course},
            "status": status,
        }
        if status == "inProgress":
            body["completionPercentage"] = rng.randrange(0, 101)
        made.append(body)
    shuffled = made[:]
    rng.shuffle(shuffled)
    deliveries: list[list[dict[str, Any]]] = []
    while shuffled:
        size = rng.randint(1, 20)
        deliveries.append(shuffled[:size])
        shuffled = shuffled[size:]
    deliveries += [d for d in deliveries if rng.random() < 0.3]  # redeliveries
    rng.shuffle(deliveries)
    return Plan(made, deliveries, known, unknown)


def seed(stack: LocalStack, plan: Plan, courses: int) -> None:
    users = [
        {"userPrincipalName": u, "displayName": u.split("@")[0], "mail": u}
        for u in sorted(plan.known_learners)
    ]
    contents = [
        {
            "externalId": f"fault-course-{c:03d}",
            "title": f"Fault course {c}",
            "contentWebUrl": f"https://academy.example/fault/{c}",
            "languageTag": "en-us",
        }
        for c in range(courses)
    ]
    document = {"users": users, "contents": {PROVIDER_ID: contents}}
    httpx.post(f"{stack.sandbox}/_sandbox/seed", json=document, timeout=60).raise_for_status()


def deliver(stack: LocalStack, delivery: list[dict[str, Any]], tally: Tally) -> None:
    """Send one delivery the way a platform does: retry on 5xx and connection errors, with backoff."""
    for attempt in range(60):
        try:
            response = stack.send(delivery)
        except httpx.HTTPError:
            response = None
        tally.posts += 1
        if response is not None:
            tally.statuses[response.status_code] += 1
            if response.status_code == 202:
                tally.accepted += len(delivery)
                return
            if response.status_code < 500:
                raise RuntimeError(f"delivery refused: {response.status_code} {response.text[:200]}")
        tally.retries += 1
        time.sleep(min(0.2 * 2**attempt, 3.0))
    raise RuntimeError("a delivery could not be made in 60 attempts")


def send_all(stack: LocalStack, deliveries: list[list[dict[str, Any]]], tally: Tally) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda d: deliver(stack, d, tally), deliveries))


def during(
    disruption: Callable[[], None],
    work: Callable[[LocalStack, list[list[dict[str, Any]]], Tally], None],
    stack: LocalStack,
    deliveries: list[list[dict[str, Any]]],
    tally: Tally,
) -> None:
    """Run `work` and, once it is under way, the disruption beside it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(work, stack, deliveries, tally)
        time.sleep(1.0)
        disruption()
        sending.result()


def restart_devhost(stack: LocalStack) -> None:
    stack.services["devhost"].kill()  # mid-batch: its received messages come back after their lease
    stack.start_devhost()


def restart_azurite(stack: LocalStack, location: Path) -> None:
    stack.services["azurite"].stop()
    service = azurite(stack.ports, location=location, log_path=stack.workdir / "azurite.log").start()
    stack.services["azurite"] = service
    service.wait_ready(stack.ports.queue)


def drain(stack: LocalStack, timeout: float) -> None:
    """Wait until the events queue has been empty for a while (leased messages count as not done)."""
    deadline, quiet_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            depth = stack.queue_depth(EVENTS_QUEUE)
        except Exception:  # storage restarting
            depth = 1
        if depth == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 8:
                return
        else:
            quiet_since = None
        time.sleep(1)
    raise RuntimeError(f"the queue did not drain in {timeout:.0f} s")


def expected_records(plan: Plan) -> dict[str, dict[str, Any]]:
    by_activity: dict[str, list[CanonicalEvent]] = {}
    for body in plan.events:
        if body["learner"]["email"] in plan.unknown_learners:
            continue
        event = CanonicalEvent.model_validate({**body, "source": "generic"})
        by_activity.setdefault(event.activity_id, []).append(event)
    expected = {}
    for activity_id, events in by_activity.items():
        state = fold(contribution(e) for e in events)
        expected[activity_id] = {
            "status": state.status,
            "completion_percentage": state.completion_percentage,
            "started_at": state.started_at,
            "completed_at": state.completed_at,
        }
    return expected


def compare(stack: LocalStack, plan: Plan) -> tuple[int, int, int, list[str]]:
    listing = httpx.get(stack.activities_url, headers={"x-sandbox-client": "faultrun"}, timeout=60).json()[
        "value"
    ]
    records = [record_from_json(doc) for doc in listing]
    counts = Counter(r.external_id for r in records)
    pairs = Counter((r.learner_user_id, r.learning_content_id) for r in records)
    duplicated = sum(n - 1 for n in counts.values() if n > 1) + sum(n - 1 for n in pairs.values() if n > 1)
    by_id = {r.external_id: r for r in records}
    expected = expected_records(plan)
    missing, wrong, examples = 0, 0, []
    for activity_id, want in expected.items():
        record = by_id.get(activity_id)
        if record is None:
            missing += 1
            examples.append(f"missing {activity_id}")
            continue
        got = {
            "status": record.status,
            "completion_percentage": record.completion_percentage,
            "started_at": record.started_at,
            "completed_at": record.completed_at,
        }
        if got != want:
            wrong += 1
            examples.append(f"wrong {activity_id}: got {got}, want {want}")
    return missing, duplicated, wrong, examples[:10]


async def state_counts(stack: LocalStack) -> Counter[str]:
    from azure.data.tables.aio import TableServiceClient

    store = TableStateStore(TableServiceClient.from_connection_string(stack.ports.connection_string()))
    counts: Counter[str] = Counter()
    try:
        async for delivery in store.deliveries():
            counts[delivery.status] += 1
            counts["deduplicated"] += max(delivery.seen - 1, 0)
        async for letter in store.dead_letters():
            counts[letter.state.value] += 1
    finally:
        await store.close()
    return counts


def graph_calls(stack: LocalStack) -> tuple[int, Counter[str]]:
    stats = httpx.get(f"{stack.sandbox}/_sandbox/stats", timeout=10).json()["requests"]
    by_kind: Counter[str] = Counter()
    for key, count in stats.items():
        method, kind, _ = key.split(" ")
        by_kind[f"{method} {kind}"] += count
    return sum(by_kind.values()), by_kind


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.faultrun", description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--courses", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drain-timeout", type=float, default=900)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    plan = build_plan(args.events, args.learners, args.courses, rng)
    with tempfile.TemporaryDirectory() as workdir:
        location = Path(workdir) / "azurite"
        stack = LocalStack(Path(workdir), new_webhook_secret(), azurite_location=location)
        stack.devhost_env = {"DEVHOST_MESSAGE_LEASE_SECONDS": "20", "DEVHOST_LOG_LEVEL": "WARNING"}
        try:
            stack.start()
            seed(stack, plan, args.courses)
            httpx.post(f"{stack.sandbox}/_sandbox/reset-stats", timeout=10)
            httpx.post(f"{stack.sandbox}/_sandbox/faults", json={**FAULTS, "seed": args.seed}, timeout=10)
            tally = Tally()
            third = len(plan.deliveries) // 3
            started = time.monotonic()
            # Restarts happen while deliveries are in flight and the dev host is mid-batch.
            during(lambda: restart_devhost(stack), send_all, stack, plan.deliveries[:third], tally)
            send_all(stack, plan.deliveries[third : 2 * third], tally)
            during(
                lambda: restart_azurite(stack, location), send_all, stack, plan.deliveries[2 * third :], tally
            )
            drain(stack, args.drain_timeout)
            httpx.post(f"{stack.sandbox}/_sandbox/faults", json={}, timeout=10)
            elapsed = time.monotonic() - started
            missing, duplicated, wrong, examples = compare(stack, plan)
            counts = asyncio.run(state_counts(stack))
            total_calls, by_kind = graph_calls(stack)
        finally:
            stack.stop()
    applied = counts["applied"]
    print(
        f"sent={len(plan.events)} accepted={tally.accepted} applied={applied} "
        f"deduplicated={counts['deduplicated']} parked={counts['parked']} "
        f"deadlettered={counts['deadlettered']} "
        f"missing={missing} duplicated={duplicated} wrong={wrong}"
    )
    print(
        f"deliveries={len(plan.deliveries)} posts={tally.posts} retried={tally.retries} "
        f"answers={dict(tally.statuses)} seconds={elapsed:.0f}"
    )
    activities, patches = by_kind["POST activities"], by_kind["PATCH activityById"]
    print(
        f"graph calls (injected failures excluded): {total_calls}, {total_calls / max(applied, 1):.2f} per "
        f"applied event; on an existing activity {patches / max(applied - activities, 1):.2f} "
        f"({patches} PATCH for {applied - activities} events), a new one GET+POST ({activities} created)"
    )
    print("  " + json.dumps(dict(by_kind.most_common())))
    for line in examples:
        print("  " + line)
    return 0 if missing == duplicated == wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
