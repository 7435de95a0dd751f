"""The poison queue, drained into dead letters by a timer (not by a queue trigger).

A queue whose name ends in `-poison` has no poison queue of its own, and the Storage Queues extension
treats a failure there differently: it neither releases the message nor moves it, so it comes back
after the 10-minute receive lease, and once its dequeue count passes maxDequeueCount the host skips the
function and the message cycles, unseen, until its time-to-live (Azure/azure-sdk-for-net,
Microsoft.Azure.WebJobs.Extensions.Storage.Queues: QueueListenerFactory.CreatePoisonQueueReference
returns null for such a name; QueueProcessor.CompleteProcessingMessageAsync leaves a failed message
invisible when there is no poison queue; QueueListener sets the 10-minute visibility). A message that
is not base64 cannot be decoded there either, so a queue trigger on the poison queue would never see it
(QueueServiceClientProvider's MessageDecodingFailed handler copies it, undecoded, to the poison queue, of
which a `-poison` queue has none). The poison copies themselves are new messages with the service's
default time-to-live of seven days (QueueProcessor.CopyMessageToPoisonQueueAsync sends `message.Body`
with no time-to-live).

So no function triggers on `learning-events-poison`. This drain receives its messages with the queue
SDK, decodes each tolerantly (base64 from the host's copy of a message that failed; the raw text of one
that was not base64), records each as a dead letter (`poison`, or `invalidMessage` for what is not a
queued event) and deletes it. When the state store cannot be written, the message is left (it comes back
when its lease ends) for the next run. Runs are bounded by a Deadline; a timer is a singleton across
instances (the timer trigger takes a lock), and even two runs at once only receive different messages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.events.names import MAX_DEQUEUE_COUNT, POISON_QUEUE
from shared.storage.queues import QueueReceiver, QueueUnavailable, ReceivedMessage

if TYPE_CHECKING:
    from shared.delivery.deadline import Deadline
    from shared.delivery.worker import EventWorker

log = logging.getLogger(__name__)

#: Messages per receive (the service's most).
PAGE = 32
#: How long a received message stays invisible: a run that stops (its deadline, the state store
#: failing) leaves the rest of its page, which is visible again well before the next run.
LEASE_SECONDS = 60
#: Failures to record in a row after which a run stops (the state store is down, not one message bad).
STOP_AFTER_FAILURES = 3

MOVED = (
    f"Found on {POISON_QUEUE}: the Functions host moved it there after an attempt that did not complete "
    f"(a crash or functionTimeout on the last of {MAX_DEQUEUE_COUNT}), or without running the function "
    f"because its dequeue count was already past {MAX_DEQUEUE_COUNT}."
)
NOT_BASE64 = (
    f"Found on {POISON_QUEUE}: it is not base64, so the Functions host could not decode it and moved it "
    "there without running the function."
)

#: The characters .NET's Convert.FromBase64String skips, which the host uses to decode.
_BASE64_SPACE = str.maketrans("", "", " \t\r\n")


def decode_tolerantly(content: str) -> tuple[str, bool]:
    """(the message's text, whether it was base64). The host's copy of a message that failed is base64;
    its copy of one that could not be decoded is the raw text (which, not being base64, stays as is)."""
    try:
        return base64.b64decode(content.translate(_BASE64_SPACE), validate=True).decode("utf-8"), True
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return content, False


@dataclass
class DrainReport:
    recorded: int = 0
    failed: int = 0
    #: Why the run stopped before the queue was empty, if it did.
    stopped: str | None = None


class PoisonDrain:
    def __init__(self, worker: EventWorker, queue: QueueReceiver, queue_name: str = POISON_QUEUE) -> None:
        self._worker = worker
        self._queue = queue
        self._name = queue_name

    async def run(self, deadline: Deadline) -> DrainReport:
        """Drain until the queue is empty, the deadline passes or recording keeps failing."""
        report = DrainReport()
        while report.stopped is None:
            if deadline.expired():
                report.stopped = "deadline"
                break
            try:
                page = await asyncio.to_thread(self._queue.receive, self._name, PAGE, LEASE_SECONDS)
            except QueueUnavailable as exc:
                log.error("poison drain: the queue cannot be read (%s); next run", exc)
                report.stopped = "queueUnavailable"
                break
            if not page:
                break
            await self._drain(page, deadline, report)
        return report

    async def _drain(self, page: list[ReceivedMessage], deadline: Deadline, report: DrainReport) -> None:
        failures = 0
        for message in page:
            if deadline.expired():
                report.stopped = "deadline"
                return
            if not await self._keep(message, report):
                failures += 1
                if failures >= STOP_AFTER_FAILURES:
                    report.stopped = "stateStoreUnavailable"
                    return
            else:
                failures = 0

    async def _keep(self, message: ReceivedMessage, report: DrainReport) -> bool:
        """Record one message as a dead letter, then delete it; False (and left on the queue) when the
        dead letter could not be written."""
        body, was_base64 = decode_tolerantly(message.content)
        try:
            await self._worker.poisoned(body, MOVED if was_base64 else NOT_BASE64)
        except Exception as exc:  # the state store: the message stays, the next run tries again
            report.failed += 1
            log.error(
                "poison drain: message %s left on the queue, its dead letter could not be written (%s)",
                message.id,
                type(exc).__name__,
            )
            return False
        report.recorded += 1
        try:
            await asyncio.to_thread(self._queue.delete, self._name, message)
        except QueueUnavailable as exc:  # kept already: when it comes back it updates the same letter
            log.warning("poison drain: message %s recorded but not deleted (%s)", message.id, exc)
        return True
