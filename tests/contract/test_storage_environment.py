"""The storage clients against Azurite with a ~/.netrc naming its host: the environment is not read.

aiohttp, when told to trust the environment (azure-core's default), takes credentials for the host
from ~/.netrc and then refuses to send a request that also carries an Authorization header, which
every signed storage request does. The bridge's Table client does not trust the environment unless a
proxy is configured, so a netrc on the machine (an operator's laptop running the CLI) changes nothing.
"""

from pathlib import Path

import pytest

from devtools.localstack.processes import AzuritePorts
from shared.config.settings import load_settings
from shared.state.tables import table_service_client
from shared.storage.proxies import CA_BUNDLE_VARIABLES, PROXY_VARIABLES


@pytest.fixture
def netrc_for_azurite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password something\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    for name in (*PROXY_VARIABLES, *CA_BUNDLE_VARIABLES):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_a_netrc_entry_for_the_storage_host_does_not_break_table_requests(
    azurite_ports: AzuritePorts, netrc_for_azurite: None
) -> None:
    settings = load_settings(
        {
            "BRIDGE_SOURCES": '{"generic": {"format": "generic"}}',
            "BRIDGE_SOURCE_GENERIC_SECRET": "whsec_" + "A" * 40,
            "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
            "BRIDGE_STORAGE": azurite_ports.connection_string(),
        }
    )
    async with table_service_client(settings) as service:
        table = await service.create_table_if_not_exists("netrcprobe")
        await table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "value": 1})
        entity = await table.get_entity("p", "r")
    assert entity["value"] == 1
