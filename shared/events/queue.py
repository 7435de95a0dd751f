"""What travels on the queues between the webhook and the Graph upsert.

The queue message wraps the canonical event with delivery facts (when it was received), so the queue side
can measure lag and later issues can add trace context without changing the event model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.events.model import CanonicalEvent, UtcDatetime, WireModel
from shared.events.names import EVENTS_QUEUE, POISON_QUEUE, RETRY_SCHEDULE, STORAGE_CONNECTION

__all__ = [
    "EVENTS_QUEUE",
    "POISON_QUEUE",
    "RETRY_SCHEDULE",
    "STORAGE_CONNECTION",
    "QueuedEvent",
    "Voiding",
]


class Voiding(WireModel):
    """A source withdrew one of its events (an xAPI `voided` statement)."""

    source: str
    voided_event_id: str = Field(description="The event whose effect is withdrawn.")
    voiding_event_id: str = Field(description="The statement that withdraws it.")


class QueuedEvent(WireModel):
    """One message on EVENTS_QUEUE: an event to apply, or a voiding."""

    version: Literal[1] = 1
    event: CanonicalEvent | None = None
    void: Voiding | None = None
    received_at: UtcDatetime
    traceparent: str | None = Field(default=None, description="W3C trace context of the delivery.")
    deferrals: int = Field(
        default=0, ge=0, description="How often the event went back on the queue to wait (throttling)."
    )
    failures: int = Field(
        default=0, ge=0, description="How often it failed for a reason that names no wait (Graph down)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> QueuedEvent:
        if (self.event is None) == (self.void is None):
            raise ValueError("a queued message carries an event or a void, not both")
        return self

    @property
    def source(self) -> str:
        return self.event.source if self.event is not None else self.void.source if self.void else "unknown"

    @property
    def event_id(self) -> str:
        if self.event is not None:
            return self.event.event_id
        assert self.void is not None
        return self.void.voiding_event_id
