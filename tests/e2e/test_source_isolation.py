"""The first `azd up`: a source's Key Vault reference is not resolved yet (the app sees the literal
`@Microsoft.KeyVault(...)`). The dev host starts anyway; that source answers 503, the good one 202 and
its event reaches Graph through the queue, and /api/health says degraded and why."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.localstack.stack import LocalStack
from tests.builders import TEST_SECRET, dumps, event, signed_headers
from tests.e2e.stack import SEED, wait_for

REFERENCE = "@Microsoft.KeyVault(VaultName=kv-e2e0test;SecretName=source-vaulted)"


@pytest.fixture(scope="module")
def degraded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Its own stack, so this dev host is the only one applying queued events."""
    stack = LocalStack(
        tmp_path_factory.mktemp("degraded"),
        TEST_SECRET,
        SEED,
        more_sources={"vaulted": ({"format": "generic"}, REFERENCE)},
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_the_good_source_works_end_to_end_while_the_unresolved_one_answers_503(degraded: LocalStack) -> None:
    event_id = f"evt-{uuid.uuid4()}"
    body = event(eventId=event_id, externalCourseActivityId=f"iso-{uuid.uuid4()}")
    assert degraded.send(body).status_code == 202
    # The sender's id is namespaced by its source: the state store says which record it became.
    wait_for(lambda: degraded.activity_of("generic", event_id), what="the good source's event in Graph")

    raw = dumps(event(eventId=f"evt-{uuid.uuid4()}"))
    refused = degraded.post(raw, signed_headers(raw), source="vaulted")
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "urn:viva-learning-bridge:problem:source-not-configured"
    assert "BRIDGE_SOURCE_VAULTED_SECRET" in problem["detail"]
    assert "kv-e2e0test" not in refused.text


def test_health_says_degraded_and_why_without_the_reference(degraded: LocalStack) -> None:
    response = httpx.get(f"{degraded.bridge}/health", timeout=10)
    assert response.status_code == 200, "the instance still serves the rest"
    report = response.json()
    assert report["status"] == "degraded"
    assert report["sources"]["available"] == ["generic"]
    vaulted = report["sources"]["degraded"]["vaulted"]
    assert vaulted["setting"] == "BRIDGE_SOURCE_VAULTED_SECRET"
    assert "unresolved Key Vault reference" in vaulted["reason"]
    assert "kv-e2e0test" not in response.text


def test_the_start_up_log_says_it_once(degraded: LocalStack) -> None:
    log = Path(degraded.workdir / "devhost.log").read_text(encoding="utf-8")
    assert log.count("source set aside") == 1
    assert "source=vaulted" in log
    assert "kv-e2e0test" not in log
