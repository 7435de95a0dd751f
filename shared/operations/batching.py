"""How the operators' commands spend Graph's throttling budget: paced, waiting as Graph asks, and in
JSON batches where many reads or writes go out together.

Graph's throttling guidance: on a 429, wait as long as Retry-After says, then try again. In a batch
"requests are evaluated individually against the applicable throttling limits" (JSON batching page):
only the throttled requests wait and go again, in a later batch; the others' answers are used at once.
Pacing counts requests, not round trips, for the same reason.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from shared.delivery.deadline import Deadline
from shared.graph.errors import GraphError
from shared.graph.gateway import MAX_BATCH

log = logging.getLogger(__name__)

K = TypeVar("K")
T = TypeVar("T")

#: How many times one request is tried while Graph throttles it (or fails it transiently), and the
#: longest wait taken. The learning API names its waits in minutes ("Retry after 5 minutes"): a wait
#: up to LONGEST_WAIT is taken as asked (told on stderr: a warning line), a longer one is not: the
#: request fails with Graph's answer and the wait it named, so the operator runs the command later
#: instead of watching it sleep (docs/operate.md, "Exit statuses").
THROTTLE_ATTEMPTS = 5
LONGEST_WAIT = 600.0
#: Waits this long or longer are told (shorter ones are the usual back-off and pacing).
TOLD_WAIT = 10.0

Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """At most `rate` Graph requests a second, so an operator's command never competes with the queue
    side for Graph's throttling budget. A batch of n requests counts as n."""

    def __init__(self, rate: float, sleep: Sleep = asyncio.sleep) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._sleep = sleep

    async def wait(self, requests: int = 1) -> None:
        now = time.monotonic()
        if self._next > now:
            await self._sleep(self._next - now)
        self._next = max(now, self._next) + self._interval * requests


def _wait(error: GraphError, attempt: int) -> float:
    """Graph's wait when it named one (Retry-After, or the minutes of its message), else 2 s, 4 s,
    8 s... (at most LONGEST_WAIT)."""
    return error.retry_after if error.retry_after is not None else min(2.0 * 2**attempt, LONGEST_WAIT)


def _too_long(error: GraphError, wait: float) -> GraphError:
    """Graph's answer, saying that the wait it asked for is longer than a command waits."""
    return GraphError(
        error.status,
        error.code,
        f"{error.message.rstrip('.')} (a wait of {wait:.0f} s, longer than the {LONGEST_WAIT:.0f} s an "
        "operator command waits: run it again later)",
        error.retry_after,
    )


def _tell(error: GraphError, wait: float) -> None:
    if wait >= TOLD_WAIT:
        log.warning(
            "Graph answered %d %s: waiting %.0f s as it asks, then trying again",
            error.status,
            error.code,
            wait,
        )


async def throttled(call: Callable[[], Awaitable[T]], sleep: Sleep) -> T:
    """One request: wait as long as Graph says (up to LONGEST_WAIT), then try again."""
    for attempt in range(THROTTLE_ATTEMPTS):
        try:
            return await call()
        except GraphError as exc:
            if not exc.transient or attempt + 1 == THROTTLE_ATTEMPTS:
                raise
            wait = _wait(exc, attempt)
            if wait > LONGEST_WAIT:
                raise _too_long(exc, wait) from None
            _tell(exc, wait)
            await sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


async def in_batches(
    keys: Sequence[K],
    send: Callable[[Sequence[K]], Awaitable[Sequence[T | GraphError]]],
    *,
    pacer: Pacer | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    size: int = MAX_BATCH,
    deadline: Deadline | None = None,
) -> AsyncIterator[tuple[K, T | GraphError]]:
    """Each key with its final answer, as soon as it is known: `send` asks Graph for up to `size` keys
    in one batch. A request throttled (or failed transiently) on its own waits its own Retry-After and
    goes again in a later batch, alongside fresh keys, while the others' answers are yielded at once;
    after THROTTLE_ATTEMPTS its GraphError is the answer. A transient failure of a whole batch puts all
    of its keys back the same way; any other failure of a whole batch is raised.

    Answers come in the order the keys were given, except for those that had to wait. With a
    `deadline` (a maintenance run's time budget), a wait that would outlast it is not taken: the
    GraphError is the answer now, so no run outlives its budget (and the host's functionTimeout)."""
    fresh = deque(keys)
    waiting: list[tuple[float, int, K, int]] = []  # heap of (not before, tie-break, key, attempts)
    order = 0
    # Time as the waits see it: the clock, plus whatever a sleep was asked for and did not take (a
    # test's sleep takes none), so that a request slept for is due whatever the clock says.
    skipped = 0.0
    while fresh or waiting:
        now = clock() + skipped
        batch: list[tuple[K, int]] = []
        while waiting and waiting[0][0] <= now and len(batch) < size:
            _, _, key, attempts = heapq.heappop(waiting)
            batch.append((key, attempts))
        while fresh and len(batch) < size:
            batch.append((fresh.popleft(), 0))
        if not batch:
            # Never a moment early: Graph counts a request retried too soon against the budget again.
            until = waiting[0][0]
            await sleep(math.ceil((until - now) * 1000) / 1000)
            skipped += max(0.0, until - (clock() + skipped))
            continue
        if pacer is not None:
            await pacer.wait(len(batch))
        try:
            answers: Sequence[T | GraphError] = await send([key for key, _ in batch])
        except GraphError as exc:
            if not exc.transient:
                raise
            answers = [exc] * len(batch)
        answered = clock() + skipped
        told: set[tuple[int, str, float]] = set()  # a batch throttled together is one wait: told once
        for (key, attempts), answer in zip(batch, answers, strict=True):
            if (
                isinstance(answer, GraphError)
                and answer.transient
                and attempts + 1 < THROTTLE_ATTEMPTS
                and (deadline is None or _wait(answer, attempts) < deadline.remaining())
            ):
                wait = _wait(answer, attempts)
                if wait > LONGEST_WAIT:
                    yield key, _too_long(answer, wait)
                    continue
                if (answer.status, answer.code, wait) not in told:
                    told.add((answer.status, answer.code, wait))
                    _tell(answer, wait)
                order += 1
                heapq.heappush(waiting, (answered + wait, order, key, attempts + 1))
            else:
                yield key, answer
