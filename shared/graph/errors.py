"""Graph failures, split the way the queue needs them: worth retrying, or not."""

from __future__ import annotations

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class GraphError(Exception):
    """Graph answered with an error. `code` and `message` are Graph's own (they carry no secrets)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"Graph {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUSES


class GraphUnavailable(Exception):
    """Graph could not be reached or did not answer in time (network error, timeout)."""
