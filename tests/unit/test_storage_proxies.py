"""The storage clients trust the environment (proxies, ~/.netrc) only when a proxy is configured."""

from typing import Any

import pytest

from shared.config.settings import load_settings
from shared.state.tables import table_service_client
from shared.storage.proxies import CA_BUNDLE_VARIABLES, PROXY_VARIABLES, trust_environment
from shared.storage.queues import queue_service_client

AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;QueueEndpoint=http://127.0.0.1:2/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:3/devstoreaccount1;"
)


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROXY_VARIABLES, *CA_BUNDLE_VARIABLES):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_without_a_proxy_the_environment_is_not_read_per_request(no_proxy_settings: None) -> None:
    assert not trust_environment()


@pytest.mark.parametrize(
    "name", ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
)
def test_a_proxy_or_ca_bundle_in_the_environment_is_honoured(
    no_proxy_settings: None, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    proxy = "PROXY" in name.upper()
    monkeypatch.setenv(name, "http://proxy.example:3128" if proxy else "/etc/ca.pem")
    assert trust_environment(requests=True)
    assert trust_environment() is proxy  # aiohttp reads no CA bundle variable


# Private attributes (azure-core 1.3x): what the transports were built with is not public.
def test_both_storage_clients_get_a_transport_that_follows_the_proxy_setting(
    no_proxy_settings: None,
) -> None:
    settings = load_settings(
        {
            "BRIDGE_SOURCES": '{"generic": {"format": "generic"}}',
            "BRIDGE_SOURCE_GENERIC_SECRET": "whsec_" + "A" * 40,
            "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
            "BRIDGE_STORAGE": AZURITE,
        }
    )
    tables = table_service_client(settings)
    queues = queue_service_client(settings)
    transports: list[Any] = [tables._client._client._pipeline._transport, queues._pipeline._transport]
    assert [t._use_env_settings for t in transports] == [False, False]
