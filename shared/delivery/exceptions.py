"""How applying one event can fail, in the two kinds the queue cares about."""

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
    """Worth retrying (429, 5xx, timeout): the queue delivers the message again later."""
