"""One queue message in, one outcome out: applied (or found already applied), deferred, parked or
dead-lettered with its reason, or retried.

The Functions host retries a message whose function raises, so transient failures raise and everything
permanent is recorded in the state store, then completes. Waiting is different: the event goes back on
the queue as a new message that stays invisible for the wait (spread by a little jitter so deferrals
taken together do not come back together), and this one completes, so no invocation sleeps through it.
A wait whose length is known (Graph's Retry-After, another worker's creation lease) is taken as given,
however often: throttling never dead-letters an event. Other transient failures (Graph 5xx without
Retry-After, timeouts) back off exponentially, from 2 s to 10 minutes, for about two hours of trying;
only then does the host's own retry take over.

The host's retry ends at maxDequeueCount. The attempt with that dequeue count is the last the function
sees, so there the worker records the dead letter itself (`retriesExhausted`, with the last failure)
and completes, instead of raising into the host's poison path: the poison queue is then only for what
the function never saw fail (a crash or a timeout on the last attempt, a message whose count was already
past the limit, one that is not base64), and the poison drain turns each of those into a dead letter
too (`poisoned`, shared.delivery.poison). Both mark the event's delivery row `failed`, so a later
success (a replay) removes the dead letter.

A deployment without assignments (BRIDGE_ASSIGNMENTS_ENABLED not true) writes no assignment from its
queue either: an event that states an assignment (or its withdrawal), queued before the setting was
turned off or replayed since, is dead-lettered as `assignmentsDisabled`, to be replayed once it is on.
Graph would not refuse it (the Create and Delete pages accept LearningSelfInitiatedCourse.ReadWrite.All
for an assignment too), so the bridge must.
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
from shared.delivery.exceptions import DeliveryFailure, PermanentFailure, TransientFailure
from shared.delivery.upsert import CourseActivityUpserter, UpsertResult
from shared.events.names import MAX_DEQUEUE_COUNT
from shared.events.queue import EVENTS_QUEUE, QueuedEvent
from shared.state.models import DeadLetterRecord
from shared.storage.queues import QueueSender, QueueUnavailable
from shared.telemetry import Outcome, record_event, record_lag, span

log = logging.getLogger(__name__)

#: The reason of an assignment statement the deployment does not write (assignments disabled).
ASSIGNMENTS_DISABLED = "assignmentsDisabled"
ASSIGNMENTS_DISABLED_FIX = (
    "The event states an assignment, and this deployment writes none (BRIDGE_ASSIGNMENTS_ENABLED is not "
    "true). Enable assignments (Bicep parameter enableAssignments, azd BRIDGE_ENABLE_ASSIGNMENTS=true: "
    "it grants LearningAssignedCourse.ReadWrite.All and sets the setting), then "
    "`replay --reason assignmentsDisabled`."
)


class EventWorker:
    def __init__(
        self,
        upserter: CourseActivityUpserter,
        letters: DeadLetters,
        queue: QueueSender,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        assignments_enabled: bool = True,
    ) -> None:
        self._upserter = upserter
        self._letters = letters
        self._queue = queue
        self._clock = clock
        self._assignments_enabled = assignments_enabled

    async def process(self, body: str, dequeue_count: int) -> UpsertResult | DeadLetterRecord | None:
        """Apply one message. Raises (TransientFailure, or whatever went wrong) when the queue should
        deliver it again; returns None when the event was put back on the queue to wait. On the last
        attempt (`dequeue_count` at MAX_DEQUEUE_COUNT) nothing raises: the failure becomes a dead letter
        (if even that cannot be written, the exception goes to the host, which moves the message to the
        poison queue, and the poison drain tries again)."""
        try:
            return await self._process(body, dequeue_count)
        except Exception as exc:
            if dequeue_count < MAX_DEQUEUE_COUNT:
                raise
            return await self._exhausted(body, dequeue_count, exc)

    async def _process(self, body: str, dequeue_count: int) -> UpsertResult | DeadLetterRecord | None:
        try:
            queued = QueuedEvent.model_validate_json(body)
        except ValidationError as exc:
            failure = PermanentFailure("invalidMessage", f"Not a queued event: {exc.error_count()} errors.")
            return await self._letters.record("unknown", _body_id(body), body, failure)
        with span("bridge.apply", {"bridge.source": queued.source}, queued.traceparent) as current:
            try:
                result = await self._apply(queued, retry=dequeue_count > 1 or queued.failures > 0)
            except PermanentFailure as failure:
                current.set_attribute("bridge.outcome", "failed")
                return await self._record(queued, body, failure)
            except TransientFailure as failure:
                again = _deferred(queued, failure)
                if again is not None:
                    current.set_attribute("bridge.outcome", "deferred")
                    await self._defer(*again, failure)
                    return None
                current.set_attribute("bridge.outcome", "retry")
                log.warning(
                    "event failed: event=%s source=%s attempt=%d reason=%s detail=%s",
                    queued.event_id,
                    queued.source,
                    dequeue_count,
                    failure.reason,
                    failure.detail,
                )
                raise
            current.set_attribute("bridge.outcome", result.value)
        if queued.void is not None:
            # A voiding has no delivery row of its own to say it failed before: one replayed or
            # retried after a dead letter removes that letter here (one delete; voidings are rare).
            await self._letters.resolved(queued.source, queued.event_id)
        self._count(queued, result)
        return result

    async def _exhausted(
        self, body: str, dequeue_count: int, exc: Exception
    ) -> DeadLetterRecord | UpsertResult:
        """The last attempt failed: a dead letter with the last failure's reason and detail (for an
        unexpected exception its type only: messages may quote the input, which is learner data)."""
        if isinstance(exc, DeliveryFailure):
            last, code = f"{exc.reason}: {exc.detail}", exc.graph_error_code
        else:
            last, code = type(exc).__name__, None
        detail = (
            f"Failed {dequeue_count} deliveries from the queue (maxDequeueCount {MAX_DEQUEUE_COUNT}); "
            f"the last: {last}"
        )
        log.error("event retries exhausted: attempts=%d last=%s", dequeue_count, last)
        return await self._dead_letter(body, PermanentFailure("retriesExhausted", detail, code))

    async def poisoned(self, body: str, detail: str) -> DeadLetterRecord | UpsertResult:
        """A message found on the poison queue: `poison` with `detail` (why the host put it there), or
        `invalidMessage` when it is not a queued event."""
        try:
            queued = QueuedEvent.model_validate_json(body)
        except ValidationError as exc:
            failure = PermanentFailure(
                "invalidMessage", f"Not a queued event: {exc.error_count()} errors. {detail}"
            )
            return await self._letters.record("unknown", _body_id(body), body, failure)
        return await self._record(queued, body, PermanentFailure("poison", detail))

    async def _dead_letter(self, body: str, failure: PermanentFailure) -> DeadLetterRecord | UpsertResult:
        try:
            queued = QueuedEvent.model_validate_json(body)
        except ValidationError:
            return await self._letters.record("unknown", _body_id(body), body, failure)
        return await self._record(queued, body, failure)

    async def _record(
        self, queued: QueuedEvent, body: str, failure: PermanentFailure
    ) -> DeadLetterRecord | UpsertResult:
        """Park or dead-letter an event, marking its delivery row `failed` so that a later success (a
        retry, a replay) removes the letter (CourseActivityUpserter._applied). An event a copy of which
        was applied already (its delivery row says so) is acknowledged instead: a dead letter must
        stand for an event not applied yet."""
        if queued.event is not None and not await self._upserter.mark(
            queued.source, queued.event_id, "failed"
        ):
            log.info(
                "event already applied, not dead-lettered: event=%s source=%s reason=%s",
                queued.event_id,
                queued.source,
                failure.reason,
            )
            record_event(queued.source, Outcome.DEDUPLICATED)
            return UpsertResult.DEDUPLICATED
        letter = await self._letters.record(queued.source, queued.event_id, body, failure)
        if queued.event is not None and await self._upserter.applied(queued.source, queued.event_id):
            # A copy was applied on another instance after the mark, having read the row before it
            # (so it saw nothing to remove): the letter stands for nothing.
            await self._letters.resolved(queued.source, queued.event_id)
            return UpsertResult.DEDUPLICATED
        return letter

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

    async def _apply(self, queued: QueuedEvent, *, retry: bool) -> UpsertResult:
        """`retry`: an earlier attempt may have written to Graph without living to record it (the host
        delivers the message again after a crash or a failure; a failure that names no wait, such as a
        timeout, may follow a write that landed): the upserter then writes the whole record. A
        deferral that named its wait (429, another worker's creation) wrote nothing."""
        if queued.void is not None:
            void = queued.void
            return await self._upserter.void(
                void.source, void.voided_event_id, void.voiding_event_id, retry=retry
            )
        assert queued.event is not None
        if queued.event.assignment is not None and not self._assignments_enabled:
            raise PermanentFailure(ASSIGNMENTS_DISABLED, ASSIGNMENTS_DISABLED_FIX)
        return await self._upserter.apply(queued.event, retry=retry, received_at=queued.received_at)

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
#: The least spread added to a known wait (see _deferred).
JITTER_MIN_SECONDS = 1.0


def _deferred(queued: QueuedEvent, failure: TransientFailure) -> tuple[QueuedEvent, float] | None:
    """The message to send back and its delay, or None when the host's own retry should take over.

    A known wait is taken as given, plus jitter (up to a quarter of it, at least a second: the queue
    counts visibility in whole seconds). Throttling comes in storms: every event in flight is told the
    same Retry-After at once, and without jitter they would all come back in the same second as one
    wave, to be throttled together again. The queue scale target counts those invisible messages too
    (QueueMetricsProvider reads ApproximateMessagesCount whenever one message is visible), so a wave
    also arrives on the most instances the app may have."""
    if failure.retry_after is not None:
        delay = failure.retry_after + random.uniform(0.0, max(JITTER_MIN_SECONDS, failure.retry_after / 4))
        return queued.model_copy(update={"deferrals": queued.deferrals + 1}), delay
    if queued.failures >= BACKOFF_TRIES:
        return None
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2**queued.failures) * random.uniform(1.0, 1.25)
    update = {"deferrals": queued.deferrals + 1, "failures": queued.failures + 1}
    return queued.model_copy(update=update), delay


def _body_id(body: str) -> str:
    return "message-" + hashlib.sha256(body.encode()).hexdigest()[:32]
