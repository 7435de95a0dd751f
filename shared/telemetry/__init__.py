"""What the bridge tells Application Insights: metrics with low-cardinality dimensions, and trace
context carried from the webhook through the queue to the Graph call.

Only the OpenTelemetry API is used here; the Functions worker configures the Azure Monitor exporter
(`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`, `telemetryMode: OpenTelemetry` in host.json),
and tests plug in in-memory exporters. Nothing recorded here names a learner: dimensions are the
source, an outcome, a reason code or a Graph operation.
"""

from shared.telemetry.metrics import (
    Outcome,
    record_drift,
    record_event,
    record_graph_call,
    record_lag,
)
from shared.telemetry.tracing import current_traceparent, span, tracer

__all__ = [
    "Outcome",
    "current_traceparent",
    "record_drift",
    "record_event",
    "record_graph_call",
    "record_lag",
    "span",
    "tracer",
]
