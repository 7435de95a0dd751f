"""The HTTP webhook: authenticate, parse, validate, enqueue, answer (never calls Graph)."""

from shared.ingest.handler import WebhookIngestor, WebhookRequest, WebhookResponse

__all__ = ["WebhookIngestor", "WebhookRequest", "WebhookResponse"]
