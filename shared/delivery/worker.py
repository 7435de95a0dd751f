"""One queue message in, one outcome out: applied, dead-lettered with its reason, or retried.

The Functions host retries a message whose function raises (up to maxDequeueCount, then moves it to the
poison queue), so transient failures raise and everything permanent is written to the dead-letter
queue with a reason an operator can read, then completes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from shared.delivery.exceptions import PermanentFailure, TransientFailure
from shared.delivery.upsert import CourseActivityUpserter, UpsertResult
from shared.events.queue import DEADLETTER_QUEUE, DeadLetter, QueuedEvent
from shared.storage.queues import QueueSender
from shared.telemetry import Outcome, record_event, record_lag, span

log = logging.getLogger(__name__)


class EventWorker:
    def __init__(
        self,
        upserter: CourseActivityUpserter,
        deadletters: QueueSender,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._upserter = upserter
        self._deadletters = deadletters
        self._clock = clock

    async def process(self, body: str, dequeue_count: int) -> UpsertResult | DeadLetter:
        """Apply one message. Raises TransientFailure when the queue should deliver it again."""
        try:
            queued = QueuedEvent.model_validate_json(body)
        except ValidationError as exc:
            failure = PermanentFailure("invalidMessage", f"Not a queued event: {exc.error_count()} errors.")
            return await self._dead_letter(body, failure, dequeue_count)
        event = queued.event
        with span("bridge.apply", {"bridge.source": event.source}, queued.traceparent) as current:
            try:
                result = await self._upserter.apply(event)
            except PermanentFailure as failure:
                current.set_attribute("bridge.outcome", Outcome.DEADLETTERED.value)
                return await self._dead_letter(body, failure, dequeue_count, event.event_id, event.source)
            except TransientFailure as failure:
                current.set_attribute("bridge.outcome", "retry")
                log.warning(
                    "event will be retried: event=%s source=%s attempt=%d reason=%s detail=%s",
                    event.event_id,
                    event.source,
                    dequeue_count,
                    failure.reason,
                    failure.detail,
                )
                raise
            outcome = Outcome.DEDUPLICATED if result is UpsertResult.UNCHANGED else Outcome.APPLIED
            current.set_attribute("bridge.outcome", outcome.value)
        lag = (self._clock() - event.occurred_at).total_seconds()
        record_event(event.source, outcome)
        if outcome is Outcome.APPLIED:
            record_lag(event.source, lag)
        log.info(
            "event applied: event=%s source=%s activity=%s result=%s lag_s=%.1f",
            event.event_id,
            event.source,
            event.activity_id,
            result.value,
            lag,
        )
        return result

    async def _dead_letter(
        self,
        body: str,
        failure: PermanentFailure,
        attempts: int,
        event_id: str | None = None,
        source: str | None = None,
    ) -> DeadLetter:
        letter = DeadLetter(
            reason=failure.reason,
            detail=failure.detail,
            failed_at=self._clock(),
            attempts=attempts,
            graph_error_code=failure.graph_error_code,
            message=body,
        )
        message = letter.model_dump_json(by_alias=True)
        await asyncio.to_thread(self._deadletters.send_all, DEADLETTER_QUEUE, [message])
        record_event(source or "unknown", Outcome.DEADLETTERED, reason=failure.reason)
        log.error(
            "event dead-lettered: event=%s source=%s reason=%s detail=%s",
            event_id,
            source,
            failure.reason,
            failure.detail,
        )
        return letter
