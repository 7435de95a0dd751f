"""The queue-triggered function: one message, applied to Graph or dead-lettered."""

from __future__ import annotations

import azure.functions as func

from shared.runtime import Bridge


async def apply_event(bridge: Bridge, message: func.QueueMessage) -> None:
    body = message.get_body().decode("utf-8")
    # TransientFailure propagates: the host makes the message visible again and retries it.
    await bridge.worker().process(body, message.dequeue_count or 1)
