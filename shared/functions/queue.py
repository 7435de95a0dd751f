"""The queue- and timer-triggered functions: apply an event, keep a poisoned one, retry parked ones."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

if TYPE_CHECKING:  # imported by function_app at start-up: the Bridge's modules come with its first use
    from shared.runtime import Bridge

log = logging.getLogger(__name__)


async def apply_event(bridge: Bridge, message: func.QueueMessage) -> None:
    # Not UTF-8 cannot be a queued event: decoded with replacements, it is dead-lettered as invalid.
    body = message.get_body().decode("utf-8", errors="replace")
    # A failure propagates (the host makes the message visible again and retries it), except on the
    # last attempt, where the worker records the dead letter itself (shared.delivery.worker).
    await bridge.worker().process(body, message.dequeue_count or 1)


async def poisoned_event(bridge: Bridge, message: func.QueueMessage) -> None:
    """Nothing stays only in the poison queue: each message becomes a dead letter with its reason."""
    body = message.get_body().decode("utf-8", errors="replace")
    await bridge.worker().poisoned(body, "The Functions host moved it to the poison queue.")


async def retry_parked(bridge: Bridge) -> None:
    from shared.delivery.deadline import Deadline

    count = await bridge.dead_letters().retry_due(Deadline.maintenance())
    log.info("parked events put back on the queue: %d", count)
