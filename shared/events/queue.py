"""What travels on the queues between the webhook and the Graph upsert.

The queue message wraps the canonical event with delivery facts (when it was received), so the queue side
can measure lag and later issues can add trace context without changing the event model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.events.model import CanonicalEvent, UtcDatetime, WireModel

#: The app-setting (prefix) the queue bindings use: a connection string or identity-based settings.
STORAGE_CONNECTION = "BRIDGE_STORAGE"
#: Accepted events, one message per event, consumed by the Graph upsert.
EVENTS_QUEUE = "learning-events"
#: Events that can never be applied as they are, with the reason (written by the upsert).
DEADLETTER_QUEUE = "learning-events-deadletter"
#: Where the Functions host moves a message after maxDequeueCount failed attempts.
POISON_QUEUE = f"{EVENTS_QUEUE}-poison"


class QueuedEvent(WireModel):
    """One message on EVENTS_QUEUE."""

    version: Literal[1] = 1
    event: CanonicalEvent
    received_at: UtcDatetime
    traceparent: str | None = Field(default=None, description="W3C trace context of the delivery.")


class DeadLetter(WireModel):
    """One message on DEADLETTER_QUEUE: the original message, why it failed, and when."""

    version: Literal[1] = 1
    reason: str = Field(description="Machine-readable reason, e.g. learnerNotFound.")
    detail: str = Field(description="What happened, for the operator (no personal data).")
    failed_at: datetime
    attempts: int
    graph_error_code: str | None = None
    message: str = Field(description="The original queue message, verbatim, for replay.")
