"""One queue message in, one outcome out: applied (or found already applied), deferred, parked or
dead-lettered with its reason, or retried.

The Functions host retries a message whose function raises (up to maxDequeueCount, then moves it to
the poison queue, which `poisoned` turns into a dead letter too), so transient failures raise and
everything permanent is recorded in the state store, then completes. Waiting is different: the
event goes back on the queue as a new message that stays invisible for the wait, and this one
completes, so no invocation sleeps through it. A wait whose length is known (Graph's Retry-After,
another worker's creation lease) is taken as given, however often: throttling never poisons an event.
Other transient failures (Graph 5xx without Retry-After, timeouts) back off exponentially, from 2 s to
10 minutes, for about two hours of trying; only then does the host's own retry, and the poison queue,
take over.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from shared.delivery.deadletters import DeadLetters
from shared.delivery.exceptions import PermanentFailure, TransientFailure
from shared.delivery.upsert import CourseActivityUpserter, UpsertResult
from shared.events.queue import EVENTS_QUEUE, QueuedEvent
from shared.state.models import DeadLetterRecord
from shared.storage.queues import QueueSender, QueueUnavailable
from shared.telemetry import Outcome, record_event, record_lag, span

log = logging.getLogger(__name__)


class EventWorker:
    def __init__(
        self,
        upserter: CourseActivityUpserter,
        letters: DeadLetters,
        queue: QueueSender,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._upserter = upserter
        self._letters = letters
        self._queue = queue
        self._clock = clock

    async def process(self, body: str, dequeue_count: int) -> UpsertResult | DeadLetterRecord | None:
        """Apply one message. Raises TransientFailure when the queue should deliver it again; returns
        None when the event was put back on the queue to wait."""
        try:
            queued = QueuedEvent.model_validate_json(body)
        except ValidationError as exc:
            failure = PermanentFailure("invalidMessage", f"Not a queued event: {exc.error_count()} errors.")
            return await self._letters.record("unknown", _body_id(body), body, failure)
        with span("bridge.apply", {"bridge.source": queued.source}, queued.traceparent) as current:
            try:
                result = await self._apply(queued)
            except PermanentFailure as failure:
                current.set_attribute("bridge.outcome", "failed")
                if queued.event is not None:
                    await self._upserter.mark(queued.source, queued.event_id, "failed")
                return await self._letters.record(queued.source, queued.event_id, body, failure)
            except TransientFailure as failure:
                again = _deferred(queued, failure)
                if again is not None:
                    current.set_attribute("bridge.outcome", "deferred")
                    await self._defer(*again, failure)
                    return None
                current.set_attribute("bridge.outcome", "retry")
                log.warning(
                    "event will be retried: event=%s source=%s attempt=%d reason=%s detail=%s",
                    queued.event_id,
                    queued.source,
                    dequeue_count,
                    failure.reason,
                    failure.detail,
                )
                raise
            current.set_attribute("bridge.outcome", result.value)
        self._count(queued, result)
        return result

    async def poisoned(self, body: str, dequeue_count: int) -> DeadLetterRecord:
        """A message the host gave up on after maxDequeueCount failures: keep it as a dead letter."""
        failure = PermanentFailure("poison", f"Failed {dequeue_count or 'max'} deliveries from the queue.")
        try:
            queued = QueuedEvent.model_validate_json(body)
        except ValidationError:
            return await self._letters.record("unknown", _body_id(body), body, failure)
        return await self._letters.record(queued.source, queued.event_id, body, failure)

    async def _defer(self, again: QueuedEvent, delay: float, failure: TransientFailure) -> None:
        message = again.model_dump_json(by_alias=True, exclude_none=True)
        try:
            await asyncio.to_thread(self._queue.send_later, EVENTS_QUEUE, message, delay)
        except QueueUnavailable as exc:  # cannot hand it back: let the host retry this message
            raise TransientFailure("queueUnavailable", str(exc)) from None
        record_event(again.source, Outcome.DEFERRED, reason=failure.reason)
        log.info(
            "event deferred: event=%s source=%s reason=%s delay_s=%.0f deferrals=%d",
            again.event_id,
            again.source,
            failure.reason,
            delay,
            again.deferrals,
        )

    async def _apply(self, queued: QueuedEvent) -> UpsertResult:
        if queued.void is not None:
            void = queued.void
            return await self._upserter.void(void.source, void.voided_event_id, void.voiding_event_id)
        assert queued.event is not None
        return await self._upserter.apply(queued.event)

    def _count(self, queued: QueuedEvent, result: UpsertResult) -> None:
        outcome = Outcome.DEDUPLICATED if result is UpsertResult.DEDUPLICATED else Outcome.APPLIED
        record_event(queued.source, outcome)
        lag = None
        if queued.event is not None and outcome is Outcome.APPLIED:
            lag = (self._clock() - queued.event.occurred_at).total_seconds()
            record_lag(queued.source, lag)
        log.info(
            "event %s: event=%s source=%s result=%s lag_s=%s",
            outcome.value,
            queued.event_id,
            queued.source,
            result.value,
            f"{lag:.1f}" if lag is not None else "-",
        )


#: Backing off from a failure that names no wait: 2 s, 4 s, ... 10 min, 16 times (about two hours).
BACKOFF_BASE, BACKOFF_MAX, BACKOFF_TRIES = 2.0, 600.0, 16


def _deferred(queued: QueuedEvent, failure: TransientFailure) -> tuple[QueuedEvent, float] | None:
    """The message to send back and its delay, or None when the host's own retry should take over."""
    if failure.retry_after is not None:
        return queued.model_copy(update={"deferrals": queued.deferrals + 1}), failure.retry_after
    if queued.failures >= BACKOFF_TRIES:
        return None
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2**queued.failures) * random.uniform(1.0, 1.25)
    update = {"deferrals": queued.deferrals + 1, "failures": queued.failures + 1}
    return queued.model_copy(update=update), delay


def _body_id(body: str) -> str:
    return "message-" + hashlib.sha256(body.encode()).hexdigest()[:32]
