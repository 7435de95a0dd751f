"""The bridge's metrics. Names and dimensions are a contract with the alerts and the workbook in infra/:
change them together.

- `bridge.events` (counter, {event}): source, outcome (received, accepted, ignored, rejected, applied,
  deduplicated, deferred, parked, deadlettered), reason (a code such as learnerNotFound; empty when
  there is none);
- `bridge.event.lag` (histogram, s): source; from the event's time to its application in Graph;
- `bridge.graph.duration` (histogram, ms): operation, status (an HTTP status, or "unavailable");
- `bridge.graph.throttled` (counter): operation; each 429 Graph answered;
- `bridge.reconcile.drift` (gauge, {activity}): kind (missing, replaced, foreignOwner, changed, inLine);
  what the last daily reconcile found.
"""

from __future__ import annotations

from enum import StrEnum

from opentelemetry import metrics

_meter = metrics.get_meter("viva_learning_bridge")
_events = _meter.create_counter("bridge.events", unit="{event}", description="Learning events by outcome")
_lag = _meter.create_histogram("bridge.event.lag", unit="s", description="Event time to applied in Graph")
_graph_duration = _meter.create_histogram(
    "bridge.graph.duration", unit="ms", description="Graph request time"
)
_graph_throttled = _meter.create_counter("bridge.graph.throttled", unit="{request}", description="Graph 429s")
_drift = _meter.create_gauge(
    "bridge.reconcile.drift", unit="{activity}", description="Drift the last reconcile found, by kind"
)


class Outcome(StrEnum):
    RECEIVED = "received"
    ACCEPTED = "accepted"
    IGNORED = "ignored"
    REJECTED = "rejected"
    APPLIED = "applied"
    DEDUPLICATED = "deduplicated"
    DEFERRED = "deferred"  # back on the queue with the delay Graph (or a creation lease) asked for
    PARKED = "parked"
    DEADLETTERED = "deadlettered"


def record_event(source: str, outcome: Outcome, count: int = 1, reason: str = "") -> None:
    if count > 0:
        _events.add(count, {"source": source, "outcome": outcome.value, "reason": reason})


def record_lag(source: str, seconds: float) -> None:
    _lag.record(max(0.0, seconds), {"source": source})


def record_graph_call(operation: str, status: str, milliseconds: float) -> None:
    _graph_duration.record(milliseconds, {"operation": operation, "status": status})
    if status == "429":
        _graph_throttled.add(1, {"operation": operation})


def record_drift(counts: dict[str, int]) -> None:
    """The daily reconcile's counts: one gauge value per kind of drift (and the records in line)."""
    for kind in ("missing", "replaced", "foreignOwner", "changed", "inLine"):
        _drift.set(counts.get(kind, 0), {"kind": kind})
