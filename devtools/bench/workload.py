"""What the bench sends: learners and courses seeded in the sandbox, a fresh (learner, course) pair for
every new activity, events in the generic format, and a way to put many events on the bridge's queue
at once.

Events go on the queue through the operators' `import` (the same messages the webhook queues, built by
the bridge's own code), each held invisible for a few seconds: the queue side finds the whole phase
there at once, and what enqueuing costs Azurite falls outside the phase's measurement.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devtools.localstack.stack import PROVIDER_ID
from shared.events.model import CanonicalEvent
from shared.operations.importing import Importer, ImportSummary, Item

SOURCE = "generic"
_WARM_COURSE = "bench-warm-course"
_WARM_LEARNER = "bench-warm@bench.example"


@dataclass(frozen=True)
class Pair:
    learner: str  # email
    course: str  # external id


class Workload:
    """Learners x courses: enough distinct pairs for every new activity of the run."""

    def __init__(self, pairs_needed: int, generations: int = 1) -> None:
        """`generations`: how many bridges warm up, each on warm-up pairs of its own (warm_pairs)."""
        # About as many learners as courses: the warm-up (one event each) stays small.
        learners = max(5, min(50, math.isqrt(pairs_needed)))
        self.learners = [f"bench{i:03d}@bench.example" for i in range(learners)]
        courses = max(1, math.ceil(pairs_needed / learners))
        self.courses = [f"bench-course-{j:03d}" for j in range(courses)]
        self._pairs = [Pair(learner, course) for course in self.courses for learner in self.learners]
        self._used = 0
        self._serial = 0
        self.generations = generations

    def fresh(self, count: int) -> list[Pair]:
        if self._used + count > len(self._pairs):
            raise RuntimeError("the workload ran out of (learner, course) pairs")
        self._used += count
        return self._pairs[self._used - count : self._used]

    def warm_pairs(self, generation: int = 0) -> list[Pair]:
        """One pair per learner and one per course: once applied, every learner and course the run
        uses is in the bridge's caches (steady state, as for a tenant already in use). Each
        `generation` (a bridge) has a warm course and learner of its own, so no two bridges write the
        same activity (they share the state store)."""
        course, learner = _warm(generation)
        return [Pair(each, course) for each in self.learners] + [Pair(learner, each) for each in self.courses]

    def event(self, pair: Pair, percentage: int, late: bool = False) -> dict[str, Any]:
        """A generic-format event: a new activity at `percentage`, or (`late`) a later update of it."""
        self._serial += 1
        occurred = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=1 if late else 0)
        return {
            "eventId": f"bench-{self._serial:06d}-{uuid.uuid4().hex[:8]}",
            "occurredAt": occurred.isoformat(),
            "learner": {"email": pair.learner},
            "course": {"externalId": pair.course},
            "status": "inProgress",
            "completionPercentage": percentage,
        }

    def seed(self, sandbox: str) -> None:
        users = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{email}")),
                "userPrincipalName": email,
                "displayName": email.split("@")[0],
                "mail": email,
            }
            for email in [*self.learners, *(_warm(g)[1] for g in range(self.generations))]
        ]
        contents = [
            {
                "externalId": course,
                "title": course,
                "contentWebUrl": f"https://academy.example/{course}",
                "languageTag": "en-us",
            }
            for course in [*self.courses, *(_warm(g)[0] for g in range(self.generations))]
        ]
        document = {"users": users, "contents": {PROVIDER_ID: contents}}
        httpx.post(f"{sandbox}/_sandbox/seed", json=document, timeout=60).raise_for_status()


def _warm(generation: int) -> tuple[str, str]:
    """The warm-up course and learner of one bridge (generation 0: the names of runs without baseline)."""
    if generation == 0:
        return _WARM_COURSE, _WARM_LEARNER
    local, domain = _WARM_LEARNER.split("@")
    return f"{_WARM_COURSE}-{generation}", f"{local}-{generation}@{domain}"


class DelayedQueue:
    """A QueueSender whose messages stay invisible for `delay` seconds after they are sent."""

    def __init__(self, connection_string: str, delay: int) -> None:
        self._connection_string = connection_string
        self._clients: dict[str, QueueClient] = {}
        self._pool = ThreadPoolExecutor(max_workers=8)
        self.delay = delay

    def send_all(self, queue: str, messages: Sequence[str]) -> None:
        if queue not in self._clients:
            client = QueueClient.from_connection_string(
                self._connection_string, queue, message_encode_policy=TextBase64EncodePolicy()
            )
            # The host's queue listener creates no queue (it waits for one): whoever sends first does.
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            self._clients[queue] = client
        client = self._clients[queue]
        list(self._pool.map(lambda m: client.send_message(m, visibility_timeout=self.delay), messages))

    def send_later(self, queue: str, message: str, delay_seconds: float) -> None:
        self.send_all(queue, [message])  # pragma: no cover - the importer does not defer

    def close(self) -> None:
        self._pool.shutdown()
        for client in self._clients.values():
            client.close()


def enqueue(connection_string: str, events: list[dict[str, Any]], delay: int) -> None:
    """Put the events on the bridge's queue as `import` does, visible `delay` seconds from now."""
    queue = DelayedQueue(connection_string, delay)
    summary = ImportSummary()
    try:
        Importer(queue, rate=math.inf).run(_items(events), summary, lambda: None)
    finally:
        queue.close()
    if summary.accepted != len(events):
        raise RuntimeError(
            f"the importer took {summary.accepted} of {len(events)} events: {summary.problems}"
        )


class _Captured:
    """A QueueSender that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def send_all(self, queue: str, messages: Sequence[str]) -> None:
        self.messages += messages

    def send_later(self, queue: str, message: str, delay_seconds: float) -> None:
        self.messages.append(message)  # pragma: no cover - the importer does not defer


def queue_message(event: dict[str, Any]) -> str:
    """The queue message `import` (and the webhook) makes of one event, for a function called directly."""
    captured = _Captured()
    Importer(captured, rate=math.inf).run(_items([event]), ImportSummary(), lambda: None)
    (message,) = captured.messages
    return message


def _items(events: list[dict[str, Any]]) -> Iterator[Item]:
    for event in events:
        yield event["eventId"], CanonicalEvent.model_validate({"source": SOURCE, **event})
