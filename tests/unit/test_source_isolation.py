"""One source that cannot be used never takes the bridge down: it is set aside with its reason.

Its deliveries get 503 `source-not-configured` (naming the setting, never a value), the other sources
and the queue side keep working, /api/health says degraded and why, and the start-up log says it once.
"""

import json
import logging

import pytest

from shared.config import ConfigurationError, load_settings
from shared.ingest.handler import WebhookRequest
from shared.runtime import Bridge
from tests.builders import TEST_SECRET, dumps, event, signed_headers
from tests.fakes import FakeQueue

GENERIC = {"format": "generic"}
REFERENCE = "@Microsoft.KeyVault(VaultName=kv-abc123;SecretName=source-vaulted)"
BASE = {
    "BRIDGE_SOURCES": json.dumps({"generic": {"format": "generic"}, "vaulted": {"format": "generic"}}),
    "BRIDGE_SOURCE_GENERIC_SECRET": TEST_SECRET,
    "BRIDGE_SOURCE_VAULTED_SECRET": REFERENCE,
    "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
    "BRIDGE_STORAGE": "UseDevelopmentStorage=true",
}


def bridge(**overrides: str) -> tuple[Bridge, FakeQueue]:
    queue = FakeQueue()
    return Bridge(load_settings({**BASE, **overrides}), queues=queue), queue


def post(target: Bridge, source: str, endpoint: str = "webhook") -> tuple[int, dict[str, object], str]:
    body = dumps(event())
    request = WebhookRequest(source, signed_headers(body), body, endpoint=endpoint)
    response = target.ingestor.handle(request)
    return response.status, response.body, response.media_type


def test_an_unresolved_key_vault_reference_sets_only_that_source_aside() -> None:
    target, queue = bridge()
    assert post(target, "generic")[0] == 202
    status, body, media_type = post(target, "vaulted")
    assert status == 503
    assert media_type == "application/problem+json"
    assert body["type"] == "urn:viva-learning-bridge:problem:source-not-configured"
    assert "BRIDGE_SOURCE_VAULTED_SECRET" in str(body["detail"])
    assert "kv-abc123" not in json.dumps(body)
    assert len(queue.sent["learning-events"]) == 1, "only the good source's event is queued"


def test_the_503_asks_platforms_to_retry_later() -> None:
    target, _ = bridge()
    body = dumps(event())
    response = target.ingestor.handle(WebhookRequest("vaulted", signed_headers(body), body))
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("overrides", "setting", "why"),
    [
        ({"BRIDGE_SOURCE_VAULTED_SECRET": ""}, "BRIDGE_SOURCE_VAULTED_SECRET", "needs a secret"),
        ({"BRIDGE_SOURCE_VAULTED_SECRET": REFERENCE}, "BRIDGE_SOURCE_VAULTED_SECRET", "unresolved Key Vault"),
        (
            {"BRIDGE_SOURCES": json.dumps({"generic": GENERIC, "vaulted": {"format": "thinkific", "x": 1}})},
            "BRIDGE_SOURCES",
            "option",
        ),
        (
            {"BRIDGE_SOURCES": json.dumps({"generic": GENERIC, "vaulted": {"format": "no-such-format"}})},
            "BRIDGE_SOURCES",
            "unknown format",
        ),
        (
            {"BRIDGE_SOURCES": json.dumps({"generic": GENERIC, "vaulted": {"options": 1}})},
            "BRIDGE_SOURCES",
            '"format"',
        ),
    ],
    ids=["empty secret", "unresolved reference", "invalid options", "unknown format", "no format"],
)
def test_health_reports_each_set_aside_source_with_the_setting_and_why(
    overrides: dict[str, str], setting: str, why: str
) -> None:
    target, _ = bridge(**overrides)
    report = target.health()
    assert report["status"] == "degraded"
    assert report["sources"]["available"] == ["generic"]
    degraded = report["sources"]["degraded"]["vaulted"]
    assert degraded["setting"] == setting
    assert why in degraded["reason"]
    assert "kv-abc123" not in json.dumps(report)
    assert post(target, "vaulted")[0] == 503
    assert post(target, "generic")[0] == 202


def test_health_is_ok_when_every_source_works() -> None:
    target, _ = bridge(BRIDGE_SOURCES='{"generic": {"format": "generic"}}')
    assert target.health() == {"status": "ok", "sources": {"available": ["generic"], "degraded": {}}}


def test_unreadable_sources_setting_leaves_the_app_up_and_every_webhook_503() -> None:
    target, _ = bridge(BRIDGE_SOURCES="{not json")
    report = target.health()
    assert report["status"] == "degraded"
    assert "BRIDGE_SOURCES is not valid JSON" in report["problems"][0]
    status, body, _ = post(target, "generic")
    assert status == 503
    assert "BRIDGE_SOURCES" in str(body["detail"])


def test_an_unknown_source_is_still_404_when_another_is_set_aside() -> None:
    target, _ = bridge()
    assert post(target, "nobody")[0] == 404


def test_a_set_aside_source_answers_404_on_a_route_its_format_does_not_serve() -> None:
    target, _ = bridge()
    assert post(target, "vaulted", endpoint="xapi")[0] == 404


def test_queued_events_of_a_set_aside_source_keep_their_learner_lookup() -> None:
    """Events queued before the secret went missing still resolve account learners."""
    sources = json.dumps(
        {
            "generic": {"format": "generic"},
            "vaulted": {"format": "generic", "accountAttribute": "employeeId"},
        }
    )
    target, _ = bridge(BRIDGE_SOURCES=sources)
    options = target.unavailable["vaulted"].options
    assert options is not None
    assert options.account_attribute == "employeeId"


def test_the_start_up_log_names_each_set_aside_source_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.runtime"):
        target, _ = bridge()
        post(target, "generic")
    set_aside = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(set_aside) == 1
    assert "source=vaulted" in set_aside[0]
    assert "BRIDGE_SOURCE_VAULTED_SECRET" in set_aside[0]
    assert "kv-abc123" not in caplog.text
    assert TEST_SECRET not in caplog.text


def test_settings_nothing_works_without_still_stop_start_up_naming_them() -> None:
    env = {k: v for k, v in BASE.items() if k not in ("BRIDGE_STORAGE", "BRIDGE_PROVIDER_REGISTRATION_ID")}
    with pytest.raises(ConfigurationError) as caught:
        Bridge.from_environment(env)
    message = str(caught.value)
    assert "BRIDGE_STORAGE" in message
    assert "BRIDGE_PROVIDER_REGISTRATION_ID" in message
    assert "vaulted" not in message, "a source's problem is not a start-up failure"
