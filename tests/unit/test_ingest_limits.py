"""What the ingestor checks before anything is queued, and what it answers when storage fails part way."""

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import SecretStr

from shared.config.settings import SourceSettings
from shared.events.queue import EVENTS_QUEUE, QueuedEvent, Voiding
from shared.ingest import WebhookIngestor, WebhookRequest
from shared.ingest.handler import queue_limit_problems
from shared.sources.registry import build_sources
from shared.storage.queues import QueueUnavailable
from tests.builders import TEST_SECRET, dumps, event, signed_headers
from tests.fakes import FakeQueue


class FailsAfter:
    """A queue that takes `ok` messages, then fails (a storage outage in the middle of a batch)."""

    def __init__(self, ok: int) -> None:
        self.ok = ok
        self.sent: list[str] = []

    def send_all(self, queue: str, messages: Sequence[str]) -> None:
        taken = list(messages[: self.ok])
        self.sent += taken
        if len(messages) > self.ok:
            raise QueueUnavailable("queue down", range(len(taken)))


def ingestor(queue: object) -> WebhookIngestor:
    sources = build_sources(
        {
            "generic": SourceSettings(name="generic", format="generic", secret=SecretStr(TEST_SECRET)),
            "lrs": SourceSettings(name="lrs", format="xapi", secret=SecretStr("k:s")),
        }
    )
    return WebhookIngestor(sources, queue, 1024 * 1024)  # type: ignore[arg-type]


def generic(body: bytes) -> WebhookRequest:
    return WebhookRequest("generic", signed_headers(body), body)


def test_a_batch_queued_part_way_says_exactly_which_events_were_queued_and_that_a_retry_is_safe() -> None:
    queue = FailsAfter(ok=1)
    response = ingestor(queue).handle(generic(dumps([event(eventId="a"), event(eventId="b")])))
    assert response.status == 503
    assert response.headers["Retry-After"]
    assert response.body["queued"] == ["a"]
    assert "1 of 2" in response.body["detail"]
    assert "Retry the whole delivery" in response.body["detail"]


def test_nothing_queued_says_nothing_was_accepted() -> None:
    response = ingestor(FakeQueue(fail=True)).handle(generic(dumps(event())))
    assert response.status == 503
    assert "nothing was accepted" in response.body["detail"]
    assert "queued" not in response.body


def test_a_voiding_statement_with_an_overlong_target_is_400_and_nothing_is_queued() -> None:
    queue = FakeQueue()
    statement = {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": "mailto:admin@contoso.example"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": "x" * 60_000},
    }
    headers = {"content-type": "application/json", "authorization": "Basic azpz"}
    response = ingestor(queue).handle(WebhookRequest("lrs", headers, json.dumps(statement).encode()))
    assert response.status == 400
    assert queue.sent[EVENTS_QUEUE] == []


def test_a_signed_body_that_is_not_utf8_is_400() -> None:
    body = b'{"eventId": "\xff"}'
    headers = signed_headers(b"placeholder")
    key = base64.b64decode(TEST_SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    headers["webhook-signature"] = (
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    )
    response = ingestor(FakeQueue()).handle(WebhookRequest("generic", headers, body))
    assert response.status == 400
    assert "UTF-8" in response.body["detail"]


def test_header_values_that_are_not_text_are_401_not_a_crash() -> None:
    body = dumps(event())
    for value in ("Basic \udcff", "\udcff\udcfe", "Basic " + "\xff" * 8):
        headers = {"content-type": "application/json", "authorization": value}
        assert ingestor(FakeQueue()).handle(WebhookRequest("lrs", headers, body)).status == 401
    headers = {**signed_headers(body), "webhook-signature": "v1,\udcff", "webhook-id": "\udcff"}
    assert ingestor(FakeQueue()).handle(generic(body).__class__("generic", headers, body)).status == 401


def test_every_voiding_id_and_every_message_size_is_checked_before_queueing() -> None:
    now = datetime.now(UTC)
    items = [
        QueuedEvent(
            void=Voiding(source="s", voided_event_id="x" * 300, voiding_event_id="ok"), received_at=now
        ),
        QueuedEvent(
            void=Voiding(source="s", voided_event_id="ok", voiding_event_id="\u0000"), received_at=now
        ),
        QueuedEvent(void=Voiding(source="s", voided_event_id="a", voiding_event_id="b"), received_at=now),
    ]
    messages = [item.model_dump_json() for item in items]
    messages[2] += " " * 50_000  # as if an event were that large
    found = queue_limit_problems(items, messages)
    assert [p.detail.split(": ", 1)[1] for p in found] == [
        "the voided statement id must be 1-256 characters",
        "the voiding statement id must be 1-256 characters",
        "the item does not fit in a 64 KiB queue message",
    ]
