"""How applying one event can fail, in the kinds the queue cares about."""

from __future__ import annotations


class DeliveryFailure(Exception):
    """Base class; `reason` is a stable, low-cardinality code (for counts, alerts and filters)."""

    def __init__(self, reason: str, detail: str, graph_error_code: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.graph_error_code = graph_error_code


class PermanentFailure(DeliveryFailure):
    """Retrying the same message cannot help (unknown learner or content, Graph 400): dead-letter it."""


class TransientFailure(DeliveryFailure):
    """Worth retrying (429, 5xx, timeout): the queue delivers the message again later.

    `retry_after` is set when the wait is known (Graph's Retry-After, another worker's creation
    lease): the event then goes back on the queue with that delay, outside the dequeue budget that is
    meant for real failures, so waiting never poisons an event. Without it the host's own retry
    (maxDequeueCount, then the poison queue) applies.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        graph_error_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason, detail, graph_error_code)
        self.retry_after = retry_after
