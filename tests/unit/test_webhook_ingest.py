import json

import pytest
from pydantic import SecretStr

from shared.config.settings import SourceSettings
from shared.events.queue import EVENTS_QUEUE, QueuedEvent
from shared.ingest import WebhookIngestor, WebhookRequest, WebhookResponse
from shared.sources.registry import build_sources
from tests.builders import TEST_SECRET, dumps, event, fixture, signed_headers
from tests.fakes import FakeQueue

PROBLEM = "application/problem+json"


def ingestor(queue: FakeQueue, max_body_bytes: int = 1024 * 1024) -> WebhookIngestor:
    sources = build_sources(
        {"generic": SourceSettings(name="generic", format="generic", secret=SecretStr(TEST_SECRET))}
    )
    return WebhookIngestor(sources, queue, max_body_bytes)


def post(
    queue: FakeQueue,
    body: bytes,
    headers: dict[str, str] | None = None,
    source: str = "generic",
    max_body_bytes: int = 1024 * 1024,
) -> WebhookResponse:
    request = WebhookRequest(source, headers if headers is not None else signed_headers(body), body)
    return ingestor(queue, max_body_bytes).handle(request)


def assert_problem(response: WebhookResponse, status: int, slug: str) -> None:
    assert response.status == status
    assert response.media_type == PROBLEM
    assert response.body["status"] == status
    assert response.body["type"].endswith(slug)
    assert response.body["title"]
    assert response.body["detail"]


def test_a_valid_batch_is_accepted_one_message_per_event() -> None:
    queue = FakeQueue()
    response = post(queue, dumps([event(eventId="a"), event(eventId="b")]))
    assert response.status == 202
    assert response.body == {"accepted": 2, "eventIds": ["a", "b"]}
    messages = [QueuedEvent.model_validate_json(m) for m in queue.sent[EVENTS_QUEUE]]
    assert [m.event_id for m in messages] == ["a", "b"]
    assert all(m.source == "generic" for m in messages)


def test_an_unknown_source_is_404() -> None:
    assert_problem(post(FakeQueue(), dumps(event()), source="nope"), 404, "unknown-source")


def test_a_body_over_the_limit_is_413_before_anything_else() -> None:
    body = dumps(event())
    response = post(FakeQueue(), body, {}, max_body_bytes=len(body) - 1)
    assert_problem(response, 413, "body-too-large")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415(content_type: str | None) -> None:
    body = dumps(event())
    headers = signed_headers(body)
    headers.pop("content-type")
    if content_type:
        headers["content-type"] = content_type
    assert_problem(post(FakeQueue(), body, headers), 415, "unsupported-media-type")


def test_json_media_types_with_parameters_or_suffixes_are_accepted() -> None:
    body = dumps(event())
    for content_type in ("application/json; charset=utf-8", "application/vnd.lms+json"):
        headers = {**signed_headers(body), "content-type": content_type}
        assert post(FakeQueue(), body, headers).status == 202


def test_a_bad_signature_is_401_and_enqueues_nothing() -> None:
    queue = FakeQueue()
    body = dumps(event())
    headers = {**signed_headers(body), "webhook-signature": "v1,AAAA"}
    assert_problem(post(queue, body, headers), 401, "authentication-failed")
    assert not queue.sent


def test_one_invalid_event_rejects_the_whole_batch() -> None:
    queue = FakeQueue()
    response = post(queue, dumps([event(eventId="ok"), event(eventId="bad", status="done")]))
    assert_problem(response, 400, "invalid-body")
    assert response.body["errors"] == [
        {"pointer": "/1/status", "detail": "Input should be 'notStarted', 'inProgress' or 'completed'"}
    ]
    assert not queue.sent


def test_a_queue_outage_is_503_with_retry_after_and_nothing_is_reported_accepted() -> None:
    response = post(FakeQueue(fail=True), dumps(event()))
    assert_problem(response, 503, "queue-unavailable")
    assert response.headers["Retry-After"]
    assert "accepted" not in response.body


def test_problem_bodies_are_json_serialisable_and_carry_no_secret() -> None:
    response = post(FakeQueue(), b"{", signed_headers(b"{"))
    text = json.dumps(response.body)
    assert TEST_SECRET not in text
    assert response.status == 400


def _assigning(enabled: bool, body: bytes, queue: FakeQueue) -> WebhookResponse:
    sources = build_sources(
        {"generic": SourceSettings(name="generic", format="generic", secret=SecretStr(TEST_SECRET))}
    )
    bridge = WebhookIngestor(sources, queue, 1024 * 1024, assignments_enabled=enabled)
    return bridge.handle(WebhookRequest("generic", signed_headers(body), body))


def test_an_assignment_sent_while_assignments_are_disabled_is_refused_and_nothing_is_queued() -> None:
    queue = FakeQueue()
    body = dumps([event(eventId="plain"), event(eventId="assigned-1", assignment={"type": "required"})])
    response = _assigning(False, body, queue)
    assert_problem(response, 422, "assignments-disabled")
    assert response.body["errors"] == [{"pointer": "/", "detail": "item 'assigned-1': carries an assignment"}]
    assert queue.sent.get(EVENTS_QUEUE, []) == []


def test_an_assignment_is_queued_whole_when_assignments_are_enabled() -> None:
    queue = FakeQueue()
    body = dumps(
        event(assignment={"type": "recommended", "dueDate": "2026-12-31", "timeZone": "Europe/Paris"})
    )
    assert _assigning(True, body, queue).status == 202
    [message] = queue.sent[EVENTS_QUEUE]
    queued = QueuedEvent.model_validate_json(message)
    assert queued.event is not None
    assert queued.event.assignment is not None
    assert queued.event.assignment.time_zone == "Europe/Paris"


@pytest.mark.parametrize(("setting", "status"), [(None, 422), ("false", 422), ("true", 202)])
def test_the_app_refuses_assignments_unless_its_setting_enables_them(
    setting: str | None, status: int
) -> None:
    from shared.config import load_settings
    from shared.runtime import Bridge

    env = {
        "BRIDGE_SOURCES": json.dumps({"generic": {"format": "generic"}}),
        "BRIDGE_SOURCE_GENERIC_SECRET": TEST_SECRET,
        "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
        "BRIDGE_STORAGE": "UseDevelopmentStorage=true",
        **({"BRIDGE_ASSIGNMENTS_ENABLED": setting} if setting is not None else {}),
    }
    queue = FakeQueue()
    app = Bridge(load_settings(env), queues=queue)
    body = dumps(event(assignment={"type": "required"}))
    response = app.ingestor.handle(WebhookRequest("generic", signed_headers(body), body))
    assert response.status == status
    assert len(queue.sent.get(EVENTS_QUEUE, [])) == (status == 202)


def _docebo(enabled: bool, fixture_name: str, queue: FakeQueue) -> WebhookResponse:
    options = {"assignments": True, "accountAttribute": "extension_docebo_userId"}
    sources = build_sources(
        {"lms": SourceSettings(name="lms", format="docebo", options=options, secret=SecretStr("tok"))}
    )
    bridge = WebhookIngestor(sources, queue, 1024 * 1024, assignments_enabled=enabled)
    headers = {"content-type": "application/json"}
    return bridge.handle(WebhookRequest("lms", headers, fixture(fixture_name), path_token="tok"))


def test_a_vendor_enrolment_from_an_assigning_source_is_ignored_while_assignments_are_disabled() -> None:
    """The source's `assignments` option states assignments only when the deployment writes them too:
    otherwise its enrolment says only "not started" (acknowledged as ignored, saying why), and its
    progress and completions pass as self-initiated."""
    queue = FakeQueue()
    enrolled = _docebo(False, "docebo/enrollment-created-with-deadline.json", queue)
    assert enrolled.status == 202
    [ignored] = enrolled.body["ignored"]
    assert ignored["reason"] == "notStarted"
    assert "BRIDGE_ASSIGNMENTS_ENABLED" in ignored["detail"]
    assert queue.sent.get(EVENTS_QUEUE, []) == []
    assert _docebo(False, "docebo/enrollment-completed-batch.json", queue).status == 202
    assert queue.sent[EVENTS_QUEUE]
    assert all(json.loads(m)["event"].get("assignment") is None for m in queue.sent[EVENTS_QUEUE])
    assert _docebo(True, "docebo/enrollment-created-with-deadline.json", FakeQueue()).status == 202
