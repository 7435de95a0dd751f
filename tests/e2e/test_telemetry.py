"""What the bridge exports, captured with in-memory exporters during a real run (webhook in, Graph
sandbox out through msgraph-sdk): the metric names and dimensions the alerts and workbook rely on,
one trace from the webhook to the Graph call, and no learner identifier or secret anywhere."""

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.config.settings import load_settings
from shared.delivery import CourseActivityUpserter, EventWorker
from shared.delivery.deadletters import DeadLetters
from shared.delivery.resolve import Resolver
from shared.events.queue import EVENTS_QUEUE
from shared.graph.msgraph_gateway import build_learning_graph
from shared.ingest import WebhookIngestor, WebhookRequest
from shared.sources.registry import build_sources
from tests.builders import TEST_SECRET, dumps, event, signed_headers
from tests.e2e.stack import Stack
from tests.fakes import FakeQueue, MemoryStateStore

PERSONAL = ["ada.lovelace@contoso.example", "grace@contoso.example", "nobody@contoso.example", "E1815"]
SECRETS = [TEST_SECRET, "thinkific-api-key", "lrs-secret"]


@dataclass
class Captured:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: list[str]


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


@pytest.fixture(scope="module")
def exported() -> Iterator[Captured]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    logs: list[str] = []
    handler, root = _Collect(logs), logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield Captured(spans, reader, logs)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def run_pipeline(stack: Stack) -> None:
    """The webhook and the queue function's logic in-process, with the real Graph client and sandbox."""
    settings = load_settings(stack.settings_values)
    sources = build_sources(settings.sources)
    queue = FakeQueue()
    ingestor = WebhookIngestor(sources, queue, settings.max_body_bytes)
    generic = dumps(
        [
            event(eventId="tel-1", completionPercentage=20, externalCourseActivityId="tel-activity-1"),
            event(eventId="tel-2", learner={"email": "nobody@contoso.example"}),
        ]
    )
    ingestor.handle(WebhookRequest("generic", signed_headers(generic), generic))
    ingestor.handle(
        WebhookRequest("generic", {**signed_headers(generic), "webhook-signature": "v1,AAAA"}, generic)
    )
    thinkific = json.dumps(
        {
            "id": "tel-3",
            "resource": "enrollment",
            "action": "completed",
            "tenant_id": "1",
            "created_at": "2026-11-21T10:00:00Z",
            "payload": {"course": {"id": "202"}, "user": {"id": 1, "email": "grace@contoso.example"}},
        }
    ).encode()
    signature = hmac.new(b"thinkific-api-key", thinkific, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-thinkific-hmac-sha256": signature}
    ingestor.handle(WebhookRequest("thinkific", headers, thinkific))
    graph = build_learning_graph(settings)
    state = MemoryStateStore()
    upserter = CourseActivityUpserter(graph, state, Resolver(graph))
    worker = EventWorker(upserter, DeadLetters(state, queue), queue)
    for message in list(queue.sent[EVENTS_QUEUE]):
        await worker.process(message, 1)


def everything(captured: Captured) -> str:
    spans: list[ReadableSpan] = list(captured.spans.get_finished_spans())
    span_text = [
        json.dumps(
            {
                "name": s.name,
                "attributes": dict(s.attributes or {}),
                "events": [dict(e.attributes or {}) for e in s.events],
            },
            default=str,
        )
        for s in spans
    ]
    data = captured.metrics.get_metrics_data()
    metric_text = data.to_json() if data is not None else ""
    return "\n".join([*span_text, metric_text, *captured.logs])


async def test_no_learner_identifier_or_secret_is_exported(stack: Stack, exported: Captured) -> None:
    await run_pipeline(stack)
    text = everything(exported)
    assert "bridge.apply" in text  # the capture saw the run
    for value in PERSONAL + SECRETS:
        # URLs carry identifiers percent-encoded (ada%40contoso...): look for every spelling.
        for spelling in {value, quote(value, safe=""), quote_plus(value), quote(value)}:
            assert spelling.lower() not in text.lower(), f"{value!r} reached telemetry as {spelling!r}"


def _metric_points(captured: Captured) -> dict[str, list[dict[str, Any]]]:
    data = captured.metrics.get_metrics_data()
    assert data is not None
    points: dict[str, list[dict[str, Any]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(
                    dict(p.attributes or {}) for p in metric.data.data_points
                )
    return points


async def test_metrics_have_the_names_and_dimensions_alerts_rely_on(stack: Stack, exported: Captured) -> None:
    points = _metric_points(exported)
    assert {"bridge.events", "bridge.event.lag", "bridge.graph.duration"} <= set(points)
    assert all(set(p) == {"source", "outcome", "reason"} for p in points["bridge.events"])
    outcomes = {p["outcome"] for p in points["bridge.events"]}
    assert {"received", "accepted", "rejected", "applied", "parked"} <= outcomes
    assert {p["reason"] for p in points["bridge.events"] if p["outcome"] == "parked"} == {"learnerNotFound"}
    assert all(set(p) == {"operation", "status"} for p in points["bridge.graph.duration"])
    assert all(set(p) == {"source"} for p in points["bridge.event.lag"])


async def test_one_trace_runs_from_the_webhook_through_the_queue_to_graph(
    stack: Stack, exported: Captured
) -> None:
    spans = exported.spans.get_finished_spans()
    webhooks = {s.context.trace_id for s in spans if s.name == "bridge.webhook"}
    applies = [s for s in spans if s.name == "bridge.apply"]
    assert applies
    assert all(s.context.trace_id in webhooks for s in applies), (
        "apply spans must continue the webhook's trace"
    )
    graph_spans = [
        s
        for s in spans
        if s.context.trace_id in {a.context.trace_id for a in applies}
        and s.name not in ("bridge.webhook", "bridge.apply")
    ]
    assert graph_spans, "the msgraph-sdk's spans belong to the same trace"
