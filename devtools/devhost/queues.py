"""The queue trigger, driven as the Functions host's storage queue listener drives it.

Sources (Azure/azure-sdk-for-net, read 2026-12):
- sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/QueueListener.cs
  (shared into the Storage.Queues extension): receives batches with a 10-minute visibility timeout,
  renews it at half-time while the function runs, takes another batch when the messages in progress
  drop to NewBatchThreshold, backs off (up to maxPollingInterval) when the queue is empty or missing.
- .../Storage.Common/src/Shared/Queues/QueueProcessor.cs: what happens before and after a run.
- .../Storage.Common/src/Shared/UpdateQueueMessageVisibilityCommand.cs: the renewal.
- sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/Listeners/QueueListenerFactory.cs:
  which queue is the poison queue (`CreatePoisonQueueReference`).
- sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/QueueServiceClientProvider.cs:
  a message that fails decoding is poisoned at once (the MessageDecodingFailed handler).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as TriggerMessage  # the worker's, with dequeue_count

from devtools.devhost.storage import Connection, queue_client
from devtools.devhost.worker import Worker

if TYPE_CHECKING:
    from azure.storage.queue import QueueMessage

    from devtools.devhost.host import FunctionSpec, QueueOptions

log = logging.getLogger("devhost")

#: QueueListener.cs: `_visibilityTimeout = TimeSpan.FromMinutes(10)` ("if the function runs longer than
#: this, the invisibility will be updated on a timer periodically").
RECEIVE_LEASE_SECONDS = 600
#: Storage queue names: 3-63 characters, lower-case letters, digits and single dashes inside
#: (QueueClientExtensions.IsValidQueueName, which CreatePoisonQueueReference asks).
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
POISON_SUFFIX = "-poison"


def poison_queue_name(queue_name: str) -> str | None:
    """QueueListenerFactory.CreatePoisonQueueReference: no poison queue for a queue that is itself one
    (its name ends in "-poison") or whose poison name would not be a valid queue name."""
    if queue_name.endswith(POISON_SUFFIX):
        return None
    candidate = queue_name + POISON_SUFFIX
    return candidate if _QUEUE_NAME.match(candidate) else None


def receive_lease_seconds() -> int:
    """The receive lease: the host's 10 minutes, or DEVHOST_MESSAGE_LEASE_SECONDS (fault runs kill dev
    hosts and want their messages back sooner). Renewed at half-time either way."""
    return int(os.environ.get("DEVHOST_MESSAGE_LEASE_SECONDS", str(RECEIVE_LEASE_SECONDS)))


@dataclass
class _Held:
    """A received message's id and its latest pop receipt (each renewal gives a new one)."""

    id: str
    pop_receipt: str | None


class QueueListener:
    """One queue-triggered function, driven like the host's queue listener."""

    def __init__(
        self,
        spec: FunctionSpec,
        connection: Connection | str,
        options: QueueOptions,
        worker: Worker | None = None,
    ) -> None:
        trigger = spec.trigger
        self.spec = spec
        self.arg_name = trigger["name"]
        self.queue_name = trigger["queueName"]
        self.options = options
        self.worker = worker or Worker()
        self.queue = queue_client(connection, self.queue_name)
        poison = poison_queue_name(self.queue_name)
        self.poison_name = poison
        self.poison = queue_client(connection, poison) if poison is not None else None
        self.lease_seconds = receive_lease_seconds()

    async def run(self, stop: asyncio.Event) -> None:
        # The listener creates no queue: it backs off while the queue does not exist (QueueListener.
        # ExecuteAsync checks ExistsAsync); the poison queue is created with its first message.
        log.info("queue  %-16s %s", self.spec.name, self.queue_name)
        running: set[asyncio.Task[None]] = set()
        stopping = asyncio.create_task(stop.wait())
        idle = 0.1
        try:
            while not stop.is_set():
                if len(running) > self.options.refill_at:  # busy: wait for one to finish
                    await asyncio.wait({*running, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    continue
                taken = await self._take(running)
                idle = 0.1 if taken else min(idle * 2, self.options.max_polling_interval)
                if not taken:
                    await asyncio.wait({stopping}, timeout=idle)
        finally:
            stopping.cancel()
            if running:  # a stopping host lets the functions it started finish
                await asyncio.wait(running)

    async def _take(self, running: set[asyncio.Task[None]]) -> int:
        """Receive one batch and start a task per message: how many were taken."""
        try:
            messages = [
                m
                async for m in self.queue.receive_messages(
                    messages_per_page=self.options.batch_size,
                    max_messages=self.options.batch_size,
                    visibility_timeout=self.lease_seconds,
                )
            ]
        except ResourceNotFoundError:  # the queue does not exist (yet): back off, as the host does
            return 0
        except AzureError as exc:  # storage restarting: keep going, as the host does
            log.warning("queue %s: polling failed (%s); retrying", self.queue_name, type(exc).__name__)
            return 0
        for message in messages:
            task = asyncio.create_task(self._handle(message))
            running.add(task)
            task.add_done_callback(running.discard)
        return len(messages)

    async def _handle(self, message: QueueMessage) -> None:
        held = _Held(message.id, message.pop_receipt)
        try:
            await self._process(message, held)
        except AzureError as exc:  # storage restarting: the message reappears after its lease
            log.warning("queue %s: settling a message failed (%s)", self.queue_name, type(exc).__name__)

    async def _process(self, message: QueueMessage, held: _Held) -> None:
        # QueueProcessor.BeginProcessingMessageAsync: a message already past maxDequeueCount when it is
        # received (its last attempt died with a crash, a restarted worker, a timeout) is poisoned
        # without running the function.
        if (message.dequeue_count or 0) > self.options.max_dequeue_count:
            await self._poison(message, held)
            return
        try:
            body = self._decode(message.content)
        except (binascii.Error, ValueError):
            # QueueServiceClientProvider: the SDK cannot decode it, so it never reaches the function;
            # its MessageDecodingFailed handler calls QueueProcessor.HandlePoisonMessageAsync at once
            # (no attempt counted, whatever the dequeue count).
            await self._poison(message, held)
            return
        trigger = TriggerMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        renewal = asyncio.create_task(self._renew(held))
        try:
            await self.worker.invoke(
                self.spec.name, self.spec.function, {self.arg_name: trigger}, has_return=False
            )
        except Exception as exc:
            renewal.cancel()
            await self._failed(message, held, exc)
        else:
            renewal.cancel()
            await self._delete(held)

    async def _renew(self, held: _Held) -> None:
        """QueueListener.CreateUpdateMessageVisibilityTimer + UpdateQueueMessageVisibilityCommand: at
        half the lease, make the message invisible for a whole lease again (a new pop receipt each
        time); sooner after a server error; never again once the message is gone or taken over."""
        delay = self.lease_seconds / 2
        while True:
            await asyncio.sleep(delay)
            try:
                updated = await self.queue.update_message(
                    held.id, held.pop_receipt, visibility_timeout=self.lease_seconds
                )
            except HttpResponseError as exc:
                if exc.status_code is not None and exc.status_code >= 500:
                    delay = max(1.0, delay / 2)  # LinearSpeedupStrategy: try again before it expires
                    continue
                return  # 404 (gone) or 400 pop receipt mismatch (taken over): ownership lost
            except AzureError:
                delay = max(1.0, delay / 2)
                continue
            held.pop_receipt = updated.pop_receipt
            delay = self.lease_seconds / 2

    async def _delete(self, held: _Held) -> None:
        """QueueProcessor.DeleteMessageAsync: gone or taken over is fine."""
        with contextlib.suppress(ResourceNotFoundError):
            await self.queue.delete_message(held.id, held.pop_receipt)

    async def _failed(self, message: QueueMessage, held: _Held, exc: Exception) -> None:
        """QueueProcessor.CompleteProcessingMessageAsync for a failed run."""
        attempts = message.dequeue_count or 1
        log.warning(
            "function %s failed (attempt %d of %d): %s",
            self.spec.name,
            attempts,
            self.options.max_dequeue_count,
            exc,
        )
        if self.poison is None:
            # "For queues without a corresponding poison queue, leave the message invisible when
            # processing fails to prevent a fast infinite loop": it returns after its lease, and once
            # past maxDequeueCount it is never run again (BeginProcessingMessageAsync), until its TTL.
            return
        if attempts >= self.options.max_dequeue_count:
            await self._poison(message, held)
            return
        with contextlib.suppress(ResourceNotFoundError, HttpResponseError):  # ReleaseMessageAsync's
            await self.queue.update_message(  # "someone else already took over", "message is gone"
                held.id, held.pop_receipt, visibility_timeout=int(self.options.visibility_timeout)
            )

    async def _poison(self, message: QueueMessage, held: _Held) -> None:
        """QueueProcessor.HandlePoisonMessageAsync: a copy of the body as a NEW message on the poison
        queue (created if missing; its dequeue count starts again), then the original deleted. Without
        a poison queue it does nothing: the message stays invisible until its lease ends."""
        if self.poison is None:
            log.warning(
                "message %s is past maxDequeueCount of %d on %s, which has no poison queue: left alone",
                message.id,
                self.options.max_dequeue_count,
                self.queue_name,
            )
            return
        log.warning(
            "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
            self.options.max_dequeue_count,
            self.poison_name,
        )
        try:
            await self.poison.send_message(message.content)  # as it came, decodable or not
        except ResourceNotFoundError:
            with contextlib.suppress(AzureError):
                await self.poison.create_queue()
            await self.poison.send_message(message.content)
        await self._delete(held)

    def _decode(self, content: Any) -> bytes:
        raw = content if isinstance(content, bytes) else str(content).encode()
        return base64.b64decode(raw, validate=True) if self.options.message_encoding == "base64" else raw

    async def close(self) -> None:
        await self.queue.close()
        if self.poison is not None:
            await self.poison.close()
