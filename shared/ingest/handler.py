"""The webhook, independent of Azure Functions: one delivery in, queue messages and an answer out.

Order matters: the cheap checks that need no secret come first (source, size, media type), then
authentication over the raw bytes, and only then is the body parsed. Events are queued only when the
whole delivery is valid, so a batch is accepted or refused as one.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shared.events.model import OpaqueId
from shared.events.queue import EVENTS_QUEUE, QueuedEvent
from shared.ingest import problems
from shared.ingest.problems import PROBLEM_MEDIA_TYPE, Problem
from shared.sources.base import Delivery, ParseResult, SourceFormat
from shared.sources.exceptions import AuthenticationFailed, FieldProblem, InvalidPayload
from shared.storage.queues import QueueSender, QueueUnavailable
from shared.telemetry import Outcome, current_traceparent, record_event, span

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookRequest:
    source: str
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes
    path_token: str | None = None
    endpoint: str = "webhook"  # or "xapi": /api/xapi/{source}/statements


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    body: Any  # JSON-serialisable; None for an empty body
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class WebhookIngestor:
    def __init__(
        self,
        sources: Mapping[str, SourceFormat],
        queue: QueueSender,
        max_body_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        assignments_enabled: bool = True,
    ) -> None:
        self._assignments_enabled = assignments_enabled
        self._sources = {
            name: source.for_deployment(assignments_enabled=assignments_enabled)
            for name, source in sources.items()
        }
        self._queue = queue
        self._max_body_bytes = max_body_bytes
        self._clock = clock

    def handle(self, request: WebhookRequest) -> WebhookResponse:
        # An unknown source name comes from the URL: never a metric dimension (unbounded cardinality).
        source = request.source if request.source in self._sources else "unknown"
        with span(
            "bridge.webhook", {"bridge.source": source, "bridge.endpoint": request.endpoint}
        ) as current:
            outcome = self._accept(request)
            if isinstance(outcome, Problem):
                log.info("webhook refused: source=%s status=%s type=%s", source, outcome.status, outcome.slug)
                record_event(source, Outcome.RECEIVED)
                record_event(source, Outcome.REJECTED, reason=outcome.slug)
                current.set_attribute("http.response.status_code", outcome.status)
                return _problem_response(outcome)
            current.set_attribute("http.response.status_code", outcome.status)
            return outcome

    def _accept(self, request: WebhookRequest) -> WebhookResponse | Problem:
        source = self._sources.get(request.source)
        if source is None or request.endpoint not in source.endpoints:
            return problems.unknown_source(request.source, request.endpoint)
        size = len(request.body)
        if size > self._max_body_bytes:
            return problems.body_too_large(size, self._max_body_bytes)
        content_type = request.headers.get("content-type")
        if not _media_type_matches(content_type, source.media_types):
            return problems.unsupported_media_type(content_type, source.media_types)
        delivery = Delivery(
            request.source, request.body, request.headers, self._clock(), request.path_token, request.endpoint
        )
        try:
            source.authenticate(delivery)
            result = source.read(delivery)
        except AuthenticationFailed as exc:
            return problems.authentication_failed(str(exc))
        except InvalidPayload as exc:
            return problems.invalid_body(str(exc), exc.problems, exc.status, exc.slug)
        if not self._assignments_enabled:
            assigned = [e.event_id for e in result.events if e.assignment is not None]
            if assigned:
                return problems.assignments_disabled([_short_id(i) for i in assigned])
        return self._enqueue(source, delivery, result)

    def _enqueue(
        self, source: SourceFormat, delivery: Delivery, result: ParseResult
    ) -> WebhookResponse | Problem:
        traceparent = current_traceparent()
        queued = [
            QueuedEvent(event=e, received_at=delivery.received_at, traceparent=traceparent)
            for e in result.events
        ]
        queued += [
            QueuedEvent(void=v, received_at=delivery.received_at, traceparent=traceparent)
            for v in result.voids
        ]
        messages = [message.model_dump_json(by_alias=True, exclude_none=True) for message in queued]
        oversized = queue_limit_problems(queued, messages)
        if oversized:
            return problems.message_too_large(oversized)
        try:
            if messages:
                self._queue.send_all(EVENTS_QUEUE, messages)
        except QueueUnavailable as exc:
            log.error(
                "webhook not accepted, queue unavailable: source=%s queued=%d of %d error=%s",
                delivery.source,
                len(exc.sent),
                len(messages),
                exc,
            )
            return problems.queue_unavailable([queued[i].event_id for i in exc.sent], len(messages))
        for item in result.ignored:
            # The detail stays in the answer to the sender: it can quote the sender's values (a verb, a
            # type, an event name), which may carry personal data, so the log has the reason code only.
            log.info(
                "event ignored: source=%s ref=%s reason=%s", delivery.source, item.reference, item.reason
            )
        log.info(
            "webhook accepted: source=%s accepted=%d ignored=%d",
            delivery.source,
            len(result.events),
            len(result.ignored),
        )
        record_event(
            delivery.source, Outcome.RECEIVED, len(result.events) + len(result.ignored) + len(result.voids)
        )
        record_event(delivery.source, Outcome.ACCEPTED, len(result.events) + len(result.voids))
        for item in result.ignored:
            record_event(delivery.source, Outcome.IGNORED, reason=item.reason)
        accepted = source.accepted(result, delivery.endpoint)
        return WebhookResponse(accepted.status, accepted.body, headers=accepted.headers)


#: Azure Storage queue messages hold at most 64 KiB, and the host's messages are base64 (4/3 larger).
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024
_OPAQUE_ID: TypeAdapter[str] = TypeAdapter(OpaqueId)


def queue_limit_problems(queued: list[QueuedEvent], messages: list[str]) -> list[FieldProblem]:
    """What would not fit through the queue, checked before anything is sent (storage refuses an
    oversized message, and that refusal must not turn into a 503 the sender retries forever).

    Queued items do not map one to one onto the body's items (ignored ones are not queued), so each
    problem points at the body as a whole and names the item by its id (shortened)."""
    found = []
    for item, message in zip(queued, messages, strict=True):
        name = _short_id(item.event_id)
        if item.void is not None:
            for role, value in (
                ("voided", item.void.voided_event_id),
                ("voiding", item.void.voiding_event_id),
            ):
                try:
                    _OPAQUE_ID.validate_python(value)
                except ValidationError:
                    found.append(
                        FieldProblem("/", f"{name}: the {role} statement id must be 1-256 characters")
                    )
        if len(base64.b64encode(message.encode())) > MAX_QUEUE_MESSAGE_BYTES:
            found.append(FieldProblem("/", f"{name}: the item does not fit in a 64 KiB queue message"))
    return found


def _short_id(value: str) -> str:
    printable = "".join(c if c.isprintable() else "?" for c in value[:40])
    return f"item {printable!r}" + ("…" if len(value) > 40 else "")


def _media_type_matches(content_type: str | None, accepted: tuple[str, ...]) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in accepted:
        return True
    return (
        "application/json" in accepted
        and media_type.startswith("application/")
        and (media_type.endswith("+json"))
    )


def _problem_response(problem: Problem) -> WebhookResponse:
    return WebhookResponse(
        status=problem.status,
        body=problem.to_json(),
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(problem.headers),
    )
