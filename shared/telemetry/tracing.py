"""Trace context across the queue: the webhook's context is written into the queue message (W3C
traceparent) and the queue function continues it, so one trace runs from the platform's delivery to
the Graph call in Application Insights."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("viva_learning_bridge")
_propagator = TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span(name: str, attributes: Mapping[str, str | int], traceparent: str | None = None) -> Iterator[Span]:
    """A span, continuing `traceparent` when given (a queue message's)."""
    parent = _propagator.extract({"traceparent": traceparent}) if traceparent else None
    token = otel_context.attach(parent) if parent is not None else None
    try:
        with tracer.start_as_current_span(name, attributes=dict(attributes)) as current:
            yield current
    finally:
        if token is not None:
            otel_context.detach(token)
