"""Property: whatever bytes and headers arrive, every format answers with one of the documented
statuses, never an exception (issue 9's "total parse"). Driven at the ingestor with a fake queue so
that thousands of deliveries run in seconds; `HYPOTHESIS_EXAMPLES` sets the count per format (the
big run in the README uses 100,000)."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.events.queue import EVENTS_QUEUE, QueuedEvent
from shared.ingest import WebhookRequest
from shared.ingest.handler import MAX_QUEUE_MESSAGE_BYTES
from tests.fakes import FakeQueue
from tests.fuzzing import ALLOWED, SOURCES, ingestor, requests

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "150"))
QUEUE = FakeQueue()
INGESTOR = ingestor(QUEUE)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_delivery_gets_a_documented_answer_never_an_exception(source: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=requests(source))
    def check(request: WebhookRequest) -> None:
        QUEUE.sent.clear()
        response = INGESTOR.handle(request)
        assert response.status in ALLOWED, (response.status, response.body)
        if response.status >= 400:
            assert response.media_type == "application/problem+json"
            assert response.body["status"] == response.status
        for message in QUEUE.sent.get(EVENTS_QUEUE, []):
            QueuedEvent.model_validate_json(message)  # what the queue side will read
            assert len(message.encode()) * 4 / 3 <= MAX_QUEUE_MESSAGE_BYTES

    check()


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(source=st.sampled_from(["nope", "", "GENERIC", "../generic"]), body=st.binary(max_size=50))
def test_an_unknown_source_is_404_whatever_the_body(source: str, body: bytes) -> None:
    response = INGESTOR.handle(WebhookRequest(source, {"content-type": "application/json"}, body))
    assert response.status == 404
