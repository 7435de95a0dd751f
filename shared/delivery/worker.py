"""One queue message in, one outcome out: applied (or found already applied), parked or dead-lettered
with its reason, or retried.

The Functions host retries a message whose function raises (up to maxDequeueCount, then moves it to
the poison queue, which `poisoned` turns into a dead letter too), so transient failures raise and
everything permanent is recorded in the state store, then completes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from shared.delivery.deadletters import DeadLetters
from shared.delivery.exceptions import PermanentFailure, TransientFailure
from shared.delivery.upsert import CourseActivityUpserter, UpsertResult
from shared.events.queue import QueuedEvent
from shared.state.models import DeadLetterRecord
from shared.telemetry import Outcome, record_event, record_lag, span

log = logging.getLogger(__name__)


class EventWorker:
    def __init__(
        self,
        upserter: CourseActivityUpserter,
        letters: DeadLetters,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._upserter = upserter
        self._letters = letters
        self._clock = clock

    async def process(self, body: str, dequeue_count: int) -> UpsertResult | DeadLetterRecord:
        """Apply one message. Raises TransientFailure when the queue should deliver it again."""
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
                    await self._upserter.mark(queued.event, "failed")
                activity = queued.event.activity_id if queued.event is not None else None
                return await self._letters.record(queued.source, queued.event_id, body, failure, activity)
            except TransientFailure as failure:
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
        activity = queued.event.activity_id if queued.event is not None else None
        return await self._letters.record(queued.source, queued.event_id, body, failure, activity)

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


def _body_id(body: str) -> str:
    return "message-" + hashlib.sha256(body.encode()).hexdigest()[:32]
