"""The queue- and timer-triggered functions: apply an event, drain the poison queue into dead letters,
retry parked events. Each returns None: the Python worker fails a function without a `$return`
binding that returns anything else (azure-functions-python-worker, dispatcher.py:
"function ... without a $return binding returned a non-None value")."""

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


async def drain_poison(bridge: Bridge) -> None:
    """Nothing stays only in the poison queue: each message becomes a dead letter (shared.delivery.poison)."""
    from shared.delivery.deadline import Deadline

    report = await bridge.poison_drain().run(Deadline.maintenance())
    log.info(
        "poison queue drained: recorded=%d failed=%d stopped=%s",
        report.recorded,
        report.failed,
        report.stopped or "-",
    )


async def retry_parked(bridge: Bridge) -> None:
    from shared.delivery.deadline import Deadline

    count = await bridge.dead_letters().retry_due(Deadline.maintenance())
    log.info("parked events put back on the queue: %d", count)
