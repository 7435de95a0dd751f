"""Events that could not be applied: parked ("not yet") or dead-lettered, always with the reason and
the original message, in the state store where operators see and replay them.

Unknown learners, unknown content and learners without a licence are usually "not yet" (the user is
provisioned tomorrow, the course syncs tonight, the licence is being assigned): such events are parked
and retried on a schedule with growing intervals, then dead-lettered after the park timeout. Everything
else permanent is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.delivery.deadline import Deadline
from shared.delivery.exceptions import PermanentFailure
from shared.events.queue import EVENTS_QUEUE
from shared.graph.errors import (
    APP_ROLE_MISSING,
    CONTENT_OF_ANOTHER_PROVIDER,
    LEARNER_NOT_LICENSED,
    PROVIDER_NOT_ENABLED,
    PROVIDER_NOT_REGISTERED,
    TENANT_NOT_LICENSED,
)
from shared.state.models import DeadLetterRecord, LetterState
from shared.state.store import StateStore
from shared.storage.queues import QueueSender
from shared.telemetry import Outcome, record_event

log = logging.getLogger(__name__)

#: Reasons that are usually "not yet": a learner provisioned tomorrow, a course synced tonight, a
#: licence being assigned (Graph's 403 "The user license isn't valid to perform the operation").
PARKABLE = frozenset({"learnerNotFound", "contentNotFound", LEARNER_NOT_LICENSED})
#: Reasons no single event can be fixed for: every write fails until the tenant or the provider is set
#: right (shared.graph.errors). `status` lists them with what to do, and an alert fires on them
#: (infra/modules/alerts.bicep).
TENANT_WIDE = {
    TENANT_NOT_LICENSED: "add a plan that includes Viva Learning to the tenant, then replay them",
    PROVIDER_NOT_ENABLED: "turn on the provider's isCourseActivitySyncEnabled, then replay them",
    CONTENT_OF_ANOTHER_PROVIDER: (
        "register the courses under BRIDGE_PROVIDER_REGISTRATION_ID's provider, then replay them"
    ),
    PROVIDER_NOT_REGISTERED: (
        "set BRIDGE_PROVIDER_REGISTRATION_ID to a registered provider's id (`provider show --id ID` "
        "checks one, `provider register` writes one), then replay them"
    ),
    APP_ROLE_MISSING: (
        "grant the app's identity the course activity app role (`doctor` names it), then replay them"
    ),
}
#: How a parked event comes back, added to every parked letter's detail (whatever its reason). A letter
#: given up on says `replay` instead: `retry-parked` takes parked letters only.
WHILE_PARKED = "The event is retried on the parking schedule, or at once with `retry-parked --now`."
FIRST_RETRY = timedelta(minutes=5)
LONGEST_RETRY = timedelta(hours=6)


class DeadLetters:
    def __init__(
        self,
        state: StateStore,
        queue: QueueSender,
        park_timeout: timedelta = timedelta(hours=72),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._state = state
        self._queue = queue
        self._park_timeout = park_timeout
        self._clock = clock

    async def record(
        self,
        source: str,
        event_id: str,
        message: str,
        failure: PermanentFailure,
    ) -> DeadLetterRecord:
        """Park or dead-letter one event; a repeated failure updates the same record."""
        now = self._clock()
        previous = await self._state.dead_letter(source, event_id)
        # The park clock runs from the first failure for this reason while parked: an event refused
        # for another reason before (a tenant-wide refusal, fixed and replayed days later), or given up
        # on and replayed by an operator, is parked afresh for its new reason.
        parking = (
            previous is not None
            and previous.state is LetterState.PARKED
            and previous.reason == failure.reason
        )
        first = previous.first_failure if previous is not None and parking else now
        attempts = (previous.attempts + 1) if previous is not None else 1
        parked = failure.reason in PARKABLE and now - first < self._park_timeout
        letter = DeadLetterRecord(
            source=source,
            event_id=event_id,
            state=LetterState.PARKED if parked else LetterState.DEADLETTERED,
            reason=failure.reason,
            detail=self._detail(failure, parked),
            message=message,
            attempts=attempts,
            first_failure=first,
            last_failure=now,
            next_attempt=now + _backoff(attempts) if parked else None,
            graph_error_code=failure.graph_error_code,
        )
        await self._state.save_dead_letter(letter)
        outcome = Outcome.PARKED if parked else Outcome.DEADLETTERED
        record_event(source, outcome, reason=failure.reason)
        log.warning("event %s: event=%s source=%s reason=%s", outcome.value, event_id, source, failure.reason)
        return letter

    def _detail(self, failure: PermanentFailure, parked: bool) -> str:
        """The failure's detail, and for a parkable reason how the event comes back: on the parking
        schedule while parked; by `replay` once given up on (dead-lettered: `retry-parked` no longer
        takes it)."""
        if failure.reason not in PARKABLE:
            return failure.detail
        if parked:
            return f"{failure.detail} {WHILE_PARKED}"
        return (
            f"{failure.detail} Once fixed: `replay --reason {failure.reason}` (or `replay SOURCE:EVENT_ID`). "
            f"(gave up after {self._park_timeout})"
        )

    async def resolved(self, source: str, event_id: str) -> None:
        """The event went through at last: its letter, if it had one, goes."""
        await self._state.delete_dead_letter(source, event_id)

    async def retry_due(
        self, deadline: Deadline | None = None, *, at_once: bool = False, reason: str | None = None
    ) -> int:
        """Put parked events whose time has come back on the queue (the timer function). With a
        deadline, stops when it has passed: the events not reached are still due at the next run.
        `at_once`: every parked event, due or not (an operator who just fixed the cause: `retry-parked
        --now`); `reason`: only events parked for it.

        The letter's next attempt is written before the message is sent, never after, and only while
        the letter still exists (the listing may be older than a worker's success on another
        instance): a write after a success would bring the letter back, parked for ever for an event
        applied. A send that fails leaves the letter parked, due again at its next attempt."""
        now, count = self._clock(), 0
        async for letter in self._state.dead_letters():
            if deadline is not None and deadline.expired():
                log.warning(
                    "parked events: stopped at the time budget (%.0f s) after %d", deadline.seconds, count
                )
                break
            if (
                letter.state is LetterState.PARKED
                and letter.next_attempt is not None
                and (at_once or letter.next_attempt <= now)
                and (reason is None or letter.reason == reason)
            ):
                due = replace(letter, next_attempt=now + _backoff(letter.attempts + 1))
                if not await self._state.update_dead_letter(due):
                    continue  # gone since the listing: applied meanwhile, nothing to retry
                await asyncio.to_thread(self._queue.send_all, EVENTS_QUEUE, [letter.message])
                count += 1
        return count

    async def replay(self, letter: DeadLetterRecord) -> bool:
        """Put one dead letter back through the pipeline; False when it was already replayed (or went
        meanwhile: its event was applied).

        Marked `replayed` before the message is sent (see `retry_due`: a write after the send could
        bring back a letter the replay's success removed); when the send fails the letter is put
        back as it was, so the operator can replay it again."""
        if letter.state is LetterState.REPLAYED:
            return False
        replayed = replace(letter, state=LetterState.REPLAYED, last_failure=self._clock())
        if not await self._state.update_dead_letter(replayed):
            return False  # gone since it was read: its event was applied meanwhile
        try:
            await asyncio.to_thread(self._queue.send_all, EVENTS_QUEUE, [letter.message])
        except BaseException:
            await self._state.save_dead_letter(letter)
            raise
        return True


def _backoff(attempts: int) -> timedelta:
    return min(FIRST_RETRY * (1 << min(max(0, attempts - 1), 16)), LONGEST_RETRY)
