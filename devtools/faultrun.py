"""`python -m devtools.faultrun [--events 3000] [--instances 3]`: prove that no completion is lost,
duplicated or wrong when everything goes wrong at once, on several instances as Azure runs the app.

On a fresh local stack (Azurite on disk, the Graph sandbox, N dev hosts draining one queue), it sends
events for many learners and courses, each delivery to a random instance, every delivery duplicated at
random (the copy to another instance) and the order shuffled, while the sandbox injects 429s with
Retry-After, 503s, timeouts and latency. Mid-run one instance is killed (SIGKILL: the messages it had
received come back only when their lease runs out, and the other instances take them) and started
again once its lease has run out; later Azurite is restarted. Some events name learners who do not
exist. Besides the generic source, an LRS sends statements of which some are voided (the voiding often
arriving first), and a second generic source aims at the first one's records with their external ids
and reuses its event ids. At the end it compares every course activity in the sandbox with the merge
of its source's events, voided ones left out (a record none of whose events is left must not exist),
accounts for every event the bridge acknowledged (applied per the state store, or a dead letter with
its reason), and checks that no message is left on the queue or its poison queue. It prints:

    sent=… accepted=… applied=… deduplicated=… parked=… deadlettered=… missing=0 duplicated=0 wrong=0
    acknowledged=… applied=… deadlettered=… unaccounted=0 queued=0 poisoned=0

and the Graph calls per applied event (the sandbox's own count, injected failures excluded).
Exit status 1 when anything is missing, duplicated, wrong, unaccounted for or left on a queue.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import sys
import tempfile
import threading
import time
import uuid
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
from shared.delivery.merge import RECORD_FIELDS, contribution, fold
from shared.events.identity import derived_activity_id, explicit_activity_id
from shared.events.model import CanonicalEvent
from shared.events.queue import EVENTS_QUEUE, POISON_QUEUE
from shared.graph.gateway import record_from_json
from shared.state.models import DeadLetterRecord, DeliveryRecord
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


#: The sources of the run: the generic format twice (the second one aims at the first one's records
#: with their external ids and reuses its event ids), and an LRS whose statements are sometimes voided.
PARTNER, LRS = "partner", "lrs"
# Fresh credentials for each run (nothing to keep secret, nothing hard-coded).
PARTNER_SECRET = new_webhook_secret()
LRS_CREDENTIALS = f"faultrun-lrs:{uuid.uuid4().hex}"
SOURCES: dict[str, tuple[dict[str, Any], str | None]] = {
    PARTNER: ({"format": "generic"}, PARTNER_SECRET),
    LRS: ({"format": "xapi", "courseId": "lastSegment"}, LRS_CREDENTIALS),
}
PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"


@dataclass
class Planned:
    """One event as its source sends it, and what it says (the expectation is folded from these)."""

    source: str
    payload: dict[str, Any]  # a generic event, or an xAPI statement
    canonical: dict[str, Any]  # the canonical event it stands for
    voided: bool = False


@dataclass(frozen=True)
class Delivery:
    """One POST a platform makes: its bodies, and the instance the front end sends it to first."""

    source: str
    bodies: list[dict[str, Any]]
    instance: int


@dataclass
class Plan:
    events: list[Planned]
    deliveries: list[Delivery]  # redeliveries included
    known_learners: set[str]
    unknown_learners: set[str]
    #: The LRS's voiding statements: voiding statement id -> the id of the statement it voids.
    voidings: dict[str, str] = field(default_factory=dict)


@dataclass
class Tally:
    posts: int = 0
    accepted: int = 0
    retries: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    #: POSTs per instance (connection refused included).
    by_instance: Counter[int] = field(default_factory=Counter)
    #: (source, id) of every event the bridge acknowledged (202, or the LRS's 200), voidings included.
    acknowledged: set[tuple[str, str]] = field(default_factory=set)
    delivered: int = 0  # deliveries answered 2xx
    done: threading.Event = field(default_factory=threading.Event, repr=False)  # every delivery made
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def user_id(email: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{email}"))


def build_plan(events: int, learners: int, courses: int, rng: random.Random, instances: int = 1) -> Plan:
    known = {f"learner{i:04d}@fault.example" for i in range(learners)}
    unknown = {f"ghost{i:03d}@fault.example" for i in range(max(1, learners // 25))}
    people = sorted(known) + sorted(unknown)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    planned: list[Planned] = []
    voidings: list[dict[str, Any]] = []
    for index in range(events):
        learner, course = rng.choice(people), f"fault-course-{rng.randrange(courses):03d}"
        occurred = start + timedelta(minutes=rng.randrange(60 * 24 * 20))
        status = rng.choices(["inProgress", "completed", "notStarted"], weights=[70, 25, 5])[0]
        canonical: dict[str, Any] = {
            "eventId": f"fault-{index:06d}",
            "occurredAt": occurred.isoformat(),
            "learner": {"email": learner},
            "course": {"externalId": course},
            "status": status,
        }
        if status == "inProgress":
            canonical["completionPercentage"] = rng.randrange(0, 101)
        kind = rng.random()
        if kind < 0.15 and status != "notStarted":
            statement, voiding = _statement(canonical, rng)
            planned.append(
                Planned(LRS, statement, {**canonical, "eventId": statement["id"]}, voiding is not None)
            )
            voidings += [voiding] if voiding is not None else []
            continue
        assignment = _assignment(occurred, rng)
        if assignment is not None:  # the generic source also assigns (issue 18), withdraws, moves due dates
            canonical["assignment"] = assignment
        planned.append(Planned("generic", canonical, canonical))
        if kind > 0.85:  # the partner aims at the generic source's record, with the same event id
            aimed = derived_activity_id("generic", user_id(learner), course)
            body = {**canonical, "externalCourseActivityId": aimed}
            planned.append(Planned(PARTNER, body, body))
    deliveries = _deliveries(planned, voidings, rng, instances)
    voided = {v["id"]: v["object"]["id"] for v in voidings}
    return Plan(planned, deliveries, known, unknown, voided)


def _assignment(occurred: datetime, rng: random.Random) -> dict[str, Any] | None:
    """One generic event in six states the record's assignment: mostly assigned (required or
    recommended, a due date as a timestamp or a date in a zone, sometimes notes), sometimes withdrawn."""
    draw = rng.random()
    if draw >= 1 / 6:
        return None
    if draw < 1 / 30:
        return {"withdrawn": True}
    assignment: dict[str, Any] = {"type": rng.choice(["required", "recommended"])}
    if rng.random() < 0.5:
        assignment["dueAt"] = (occurred + timedelta(days=rng.randrange(1, 60))).isoformat()
    else:
        assignment["dueDate"] = (occurred + timedelta(days=rng.randrange(1, 60))).date().isoformat()
        assignment["timeZone"] = rng.choice(["Europe/Paris", "America/New_York", "UTC"])
    if rng.random() < 0.5:
        assignment["notes"] = f"Assigned in review {rng.randrange(100)}."
    return assignment


def _statement(canonical: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The event as an xAPI statement, and one time in five the statement that voids it."""
    completed = canonical["status"] == "completed"
    statement: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "actor": {"mbox": f"mailto:{canonical['learner']['email']}"},
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{'completed' if completed else 'progressed'}"},
        "object": {"id": f"https://lms.fault.example/courses/{canonical['course']['externalId']}"},
        "timestamp": canonical["occurredAt"],
    }
    if completed:
        statement["result"] = {"completion": True}
    elif "completionPercentage" in canonical:
        statement["result"] = {"extensions": {PROGRESS: canonical["completionPercentage"]}}
    if rng.random() >= 0.2:
        return statement, None
    voiding = {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "actor": statement["actor"],
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": statement["id"]},
    }
    return statement, voiding


def _deliveries(
    planned: list[Planned], voidings: list[dict[str, Any]], rng: random.Random, instances: int
) -> list[Delivery]:
    """Batches of 1 to 20 per source, shuffled (a voiding may come before its statement), each to a
    random instance; 30 % delivered twice, the copy to another instance than the first."""
    items = [(p.source, p.payload) for p in planned] + [(LRS, v) for v in voidings]
    rng.shuffle(items)
    deliveries: list[Delivery] = []
    for source in ("generic", PARTNER, LRS):
        mine = [payload for s, payload in items if s == source]
        while mine:
            size = rng.randint(1, 20)
            deliveries.append(Delivery(source, mine[:size], rng.randrange(instances)))
            mine = mine[size:]
    deliveries += [_elsewhere(d, rng, instances) for d in deliveries if rng.random() < 0.3]  # redeliveries
    rng.shuffle(deliveries)
    return deliveries


def _elsewhere(delivery: Delivery, rng: random.Random, instances: int) -> Delivery:
    """The same delivery again, sent to another instance (when there is one)."""
    other = (delivery.instance + rng.randrange(1, instances)) % instances if instances > 1 else 0
    return Delivery(delivery.source, delivery.bodies, other)


def seed(stack: LocalStack, plan: Plan, courses: int) -> None:
    users = [
        {"id": user_id(u), "userPrincipalName": u, "displayName": u.split("@")[0], "mail": u}
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


def post(stack: LocalStack, source: str, bodies: list[dict[str, Any]], instance: int) -> httpx.Response:
    if source == LRS:
        headers = {
            "content-type": "application/json",
            "authorization": "Basic " + base64.b64encode(LRS_CREDENTIALS.encode()).decode(),
            "x-experience-api-version": "1.0.3",
        }
        path = f"xapi/{LRS}/statements"
        return stack.post(json.dumps(bodies).encode(), headers, path=path, instance=instance)
    secret = PARTNER_SECRET if source == PARTNER else None
    return stack.send(bodies, source=source, secret=secret, instance=instance)


def deliver(stack: LocalStack, delivery: Delivery, tally: Tally) -> None:
    """Send one delivery the way a platform does: retry on 5xx and connection errors, with backoff.
    Each retry reaches the next instance (a front end stops routing to one that does not answer)."""
    for attempt in range(60):
        instance = (delivery.instance + attempt) % stack.instances
        try:
            response = post(stack, delivery.source, delivery.bodies, instance)
        except httpx.HTTPError:
            response = None
        with tally.lock:
            tally.posts += 1
            tally.by_instance[instance] += 1
            if response is not None:
                tally.statuses[response.status_code] += 1
        if response is not None:
            if response.status_code in (200, 202):
                ids = _acknowledged_ids(response)
                with tally.lock:
                    tally.accepted += len(delivery.bodies)
                    tally.delivered += 1
                    tally.acknowledged.update((delivery.source, i) for i in ids)
                return
            if response.status_code < 500:
                raise RuntimeError(f"delivery refused: {response.status_code} {response.text[:200]}")
        with tally.lock:
            tally.retries += 1
        time.sleep(min(0.2 * 2**attempt, 3.0))
    raise RuntimeError("a delivery could not be made in 60 attempts")


def _acknowledged_ids(response: httpx.Response) -> list[str]:
    """The ids an answer acknowledges: the generic format's `eventIds`; an LRS's list of statement ids
    (every statement of this run is an event or a voiding: none is ignored)."""
    answer = response.json()
    ids = answer if isinstance(answer, list) else answer["eventIds"]
    return [str(i) for i in ids]


def send_all(stack: LocalStack, deliveries: list[Delivery], tally: Tally) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda d: deliver(stack, d, tally), deliveries))
    tally.done.set()


def during(
    disruptions: list[Callable[[], None]], stack: LocalStack, deliveries: list[Delivery], tally: Tally
) -> None:
    """Send `deliveries` and, beside them, the disruptions (each waits for its own moments)."""
    with ThreadPoolExecutor(max_workers=1 + len(disruptions)) as pool:
        running = [pool.submit(send_all, stack, deliveries, tally)]
        running += [pool.submit(disruption) for disruption in disruptions]
        for future in running:
            future.result()


@dataclass
class Kill:
    """The instance killed mid-run, and when (seconds since the sends began)."""

    instance: int
    lease: float
    at: float = 0.0
    restarted_at: float = 0.0
    backlog: int = 0  # messages on the queue (in flight included) when it was killed


def kill_when_busy(stack: LocalStack, kill: Kill, started: float, tally: Tally, want: int) -> None:
    """SIGKILL the instance once the queue holds a full batch for every instance (so it has messages
    in flight) or `want` bodies were accepted: no clean stop, so they come back after their lease."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and tally.accepted < want:
        if _depth(stack) >= 24 * stack.instances:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # let it take a batch
    kill.backlog = _depth(stack)
    stack.services[stack.devhost_name(kill.instance)].kill()
    kill.at = time.monotonic() - started


def _depth(stack: LocalStack) -> int:
    try:
        return stack.queue_depth(EVENTS_QUEUE)
    except Exception:  # not created yet
        return 0


def restart_after_lease(stack: LocalStack, kill: Kill, started: float, restarting: threading.Lock) -> None:
    """Start the killed instance again once its messages' lease has run out: by then the survivors
    have found them on the queue, and the instance joins cold (empty caches) while work goes on."""
    time.sleep(max(0.0, started + kill.at + kill.lease + 2.0 - time.monotonic()))
    with restarting:
        stack.start_devhost(kill.instance)
    kill.restarted_at = time.monotonic() - started


def restart_azurite(stack: LocalStack, location: Path) -> None:
    time.sleep(1.0)  # once deliveries are in flight
    stack.services["azurite"].stop()
    service = azurite(stack.ports, location=location, log_path=stack.workdir / "azurite.log").start()
    stack.services["azurite"] = service
    service.wait_ready(stack.ports.queue)


#: How long both queues must stay empty before the run counts as drained (seconds).
DRAIN_QUIET = 3.0


def drain(stack: LocalStack, timeout: float) -> None:
    """Wait until the events queue and its poison queue have been empty for a while (leased messages
    count as not done)."""
    deadline, quiet_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            depth = sum(queue_depths(stack))
        except Exception:  # storage restarting
            depth = 1
        if depth == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > DRAIN_QUIET:
                return
        else:
            quiet_since = None
        time.sleep(1)
    raise RuntimeError(f"the queue did not drain in {timeout:.0f} s")


def expected_records(plan: Plan) -> dict[str, dict[str, Any] | None]:
    """Each record the run calls for, by external id: the fold of its source's events that were not
    voided (None: there must be no record, e.g. every event behind it voided)."""
    by_activity: dict[str, list[CanonicalEvent]] = {}
    for item in plan.events:
        email = item.canonical["learner"]["email"]
        if email in plan.unknown_learners or item.voided:
            by_activity.setdefault(_activity_of(item), [])
            continue
        event = CanonicalEvent.model_validate({**item.canonical, "source": item.source})
        by_activity.setdefault(_activity_of(item), []).append(event)
    expected: dict[str, dict[str, Any] | None] = {}
    for activity_id, events in by_activity.items():
        state = fold(contribution(e) for e in events)
        expected[activity_id] = (
            None if state is None else {name: getattr(state, name) for name in RECORD_FIELDS}
        )
    return expected


def _planned_for(plan: Plan, activity_id: str) -> str:
    items = [p for p in plan.events if _activity_of(p) == activity_id]
    return (
        ", ".join(f"{p.source}/{p.canonical['status']}{'/voided' if p.voided else ''}" for p in items)
        or "none"
    )


def _activity_of(item: Planned) -> str:
    learner = user_id(item.canonical["learner"]["email"])
    course = item.canonical["course"]["externalId"]
    if item.source == PARTNER:
        return explicit_activity_id(PARTNER, item.payload["externalCourseActivityId"])
    return derived_activity_id(item.source, learner, course)


def compare(stack: LocalStack, plan: Plan) -> tuple[int, int, int, list[str]]:
    """(missing, duplicated or stray, wrong, examples): every record in the sandbox against the plan."""
    listing = httpx.get(stack.activities_url, headers={"x-sandbox-client": "faultrun"}, timeout=60).json()[
        "value"
    ]
    records = [record_from_json(doc) for doc in listing]
    counts = Counter(r.external_id for r in records)
    expected = expected_records(plan)
    strays = [r.external_id for r in records if expected.get(r.external_id) is None]
    duplicated = sum(n - 1 for n in counts.values() if n > 1) + len(strays)
    examples = [
        f"unexpected record {external_id}: {_planned_for(plan, external_id)}" for external_id in strays
    ]
    by_id = {r.external_id: r for r in records}
    missing, wrong = 0, 0
    for activity_id, want in expected.items():
        record = by_id.get(activity_id)
        if want is None:
            continue  # counted with the strays if it exists
        if record is None:
            missing += 1
            examples.append(f"missing {activity_id}")
            continue
        got = {name: getattr(record, name) for name in RECORD_FIELDS}
        if got != want:
            wrong += 1
            examples.append(f"wrong {activity_id}: got {got}, want {want}")
    return missing, duplicated, wrong, examples[:10]


def queue_depths(stack: LocalStack) -> tuple[int, int]:
    """Messages on the events queue and on its poison queue, invisible (leased, deferred) ones included."""
    return stack.queue_depth(EVENTS_QUEUE), stack.queue_depth(POISON_QUEUE)


@dataclass
class Ledger:
    """What became of every acknowledged event, per the state store."""

    counts: Counter[str] = field(default_factory=Counter)  # deliveries by status, dead letters by state
    applied: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # dead letters of acknowledged events
    unaccounted: list[str] = field(default_factory=list)


async def account(stack: LocalStack, plan: Plan, acknowledged: set[tuple[str, str]]) -> Ledger:
    """Each acknowledged event is applied (its delivery row says so; a voiding: its target's row names
    it) or has a dead letter with its reason. Anything else is unaccounted for: lost."""
    from azure.data.tables.aio import TableServiceClient

    store = TableStateStore(TableServiceClient.from_connection_string(stack.ports.connection_string()))
    ledger = Ledger()
    deliveries: dict[tuple[str, str], DeliveryRecord] = {}
    letters: dict[tuple[str, str], DeadLetterRecord] = {}
    try:
        async for delivery in store.deliveries():
            ledger.counts[delivery.status] += 1
            ledger.counts["deduplicated"] += max(delivery.seen - 1, 0)
            deliveries[(delivery.source, delivery.event_id)] = delivery
        async for letter in store.dead_letters():
            ledger.counts[letter.state.value] += 1
            letters[(letter.source, letter.event_id)] = letter
    finally:
        await store.close()
    for source, event_id in sorted(acknowledged):
        if source == LRS and event_id in plan.voidings:
            target = deliveries.get((LRS, plan.voidings[event_id]))
            applied = target is not None and target.voided_by == event_id
        else:
            found = deliveries.get((source, event_id))
            applied = found is not None and found.status == "applied"
        kept = letters.get((source, event_id))
        if applied:
            ledger.applied += 1
        elif kept is not None and kept.reason:
            ledger.reasons[f"{kept.state.value}:{kept.reason}"] += 1
        else:
            ledger.unaccounted.append(f"{source}:{event_id}")
    return ledger


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
    parser.add_argument("--instances", type=int, default=3, help="dev hosts draining the queue (default 3)")
    parser.add_argument(
        "--lease",
        type=int,
        default=20,
        help="the dev hosts' message lease in seconds (DEVHOST_MESSAGE_LEASE_SECONDS)",
    )
    parser.add_argument(
        "--claim-lease",
        type=int,
        default=60,
        help="BRIDGE_CLAIM_LEASE_SECONDS: how long events wait for a creation a killed instance left (60)",
    )
    parser.add_argument("--drain-timeout", type=float, default=900)
    args = parser.parse_args()
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    began = time.monotonic()
    rng = random.Random(args.seed)
    plan = build_plan(args.events, args.learners, args.courses, rng, args.instances)
    kill = Kill(instance=rng.randrange(args.instances), lease=args.lease)
    with tempfile.TemporaryDirectory() as workdir:
        location = Path(workdir) / "azurite"
        stack = LocalStack(
            Path(workdir),
            new_webhook_secret(),
            azurite_location=location,
            more_sources=SOURCES,
            instances=args.instances,
            more_settings={
                "BRIDGE_CLAIM_LEASE_SECONDS": str(args.claim_lease),
                "BRIDGE_ASSIGNMENTS_ENABLED": "true",
            },
        )
        stack.devhost_env = {"DEVHOST_MESSAGE_LEASE_SECONDS": str(args.lease), "DEVHOST_LOG_LEVEL": "WARNING"}
        try:
            stack.start()
            seed(stack, plan, args.courses)
            httpx.post(f"{stack.sandbox}/_sandbox/reset-stats", timeout=10)
            httpx.post(f"{stack.sandbox}/_sandbox/faults", json={**FAULTS, "seed": args.seed}, timeout=10)
            tally = Tally()
            started = time.monotonic()
            timeline: list[str] = []

            restarting = threading.Lock()  # Azurite and the killed instance never restart together

            def kill_and_restart() -> None:
                """The kill while the instance is mid-batch, the restart once its lease has run out."""
                kill_when_busy(stack, kill, started, tally, want=tally_target(plan) // 10)
                restart_after_lease(stack, kill, started, restarting)

            def restart_storage() -> None:
                """Azurite's restart once two thirds of the deliveries are made."""
                while not tally.done.wait(0.2) and tally.delivered < 2 * len(plan.deliveries) // 3:
                    pass
                with restarting:
                    restart_azurite(stack, location)
                timeline.append(f"Azurite restarted at {time.monotonic() - started:.0f} s")

            during([kill_and_restart, restart_storage], stack, plan.deliveries, tally)
            timeline.append(f"everything sent at {time.monotonic() - started:.0f} s")
            drain(stack, args.drain_timeout)
            timeline.append(f"queues empty at {time.monotonic() - started - DRAIN_QUIET:.0f} s")
            left = queue_depths(stack)
            httpx.post(f"{stack.sandbox}/_sandbox/faults", json={}, timeout=10)
            elapsed = time.monotonic() - started
            missing, duplicated, wrong, examples = compare(stack, plan)
            ledger = asyncio.run(account(stack, plan, tally.acknowledged))
            total_calls, by_kind = graph_calls(stack)
        finally:
            stack.stop()
    counts = ledger.counts
    applied = counts["applied"]
    print(
        f"sent={len(plan.events)} accepted={tally.accepted} applied={applied} "
        f"deduplicated={counts['deduplicated']} parked={counts['parked']} "
        f"deadlettered={counts['deadlettered']} "
        f"missing={missing} duplicated={duplicated} wrong={wrong}"
    )
    print(
        f"acknowledged={len(tally.acknowledged)} applied={ledger.applied} "
        f"deadlettered={sum(ledger.reasons.values())} {dict(ledger.reasons)} "
        f"unaccounted={len(ledger.unaccounted)} queued={left[0]} poisoned={left[1]}"
    )
    voided = sum(1 for p in plan.events if p.voided)
    partner = sum(1 for p in plan.events if p.source == PARTNER)
    print(f"voided statements={voided} partner events aimed at generic records={partner}")
    print(
        f"instances={args.instances} posts per instance={dict(sorted(tally.by_instance.items()))} "
        f"killed=instance {kill.instance} (SIGKILL at {kill.at:.0f} s, {kill.backlog} messages on the queue; "
        f"started again at {kill.restarted_at:.0f} s, after its {args.lease} s lease)"
    )
    print(
        f"deliveries={len(plan.deliveries)} posts={tally.posts} retried={tally.retries} "
        f"answers={dict(tally.statuses)} seconds={elapsed:.0f} (whole run {time.monotonic() - began:.0f})"
    )
    print("timeline: " + ", ".join(timeline))
    activities, patches = by_kind["POST activities"], by_kind["PATCH activityById"]
    print(
        f"graph calls (injected failures excluded): {total_calls}, {total_calls / max(applied, 1):.2f} per "
        f"applied event; on an existing activity {patches / max(applied - activities, 1):.2f} "
        f"({patches} PATCH for {applied - activities} events), a new one GET+POST ({activities} created)"
    )
    print("  " + json.dumps(dict(by_kind.most_common())))
    for line in examples + [f"unaccounted {event}" for event in ledger.unaccounted[:10]]:
        print("  " + line)
    proven = missing == duplicated == wrong == 0 and not ledger.unaccounted and left == (0, 0)
    return 0 if proven else 1


def tally_target(plan: Plan) -> int:
    """How many bodies the whole run delivers."""
    return sum(len(d.bodies) for d in plan.deliveries)


if __name__ == "__main__":
    sys.exit(main())
