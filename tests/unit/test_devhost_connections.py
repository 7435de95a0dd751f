"""The dev host reads a binding's connection as the host does, identity-based settings included (the only
form Azure uses here: BRIDGE_STORAGE__queueServiceUri with a managed identity). No Entra here: the
tests check which settings are read and which client and credential are built, not a token."""

from __future__ import annotations

import pytest
from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential

from devtools.devhost.storage import ConnectionMissing, blob_service, queue_client, read_connection

AZURE = {
    "BRIDGE_STORAGE__queueServiceUri": "https://bridgestore.queue.core.windows.net",
    "BRIDGE_STORAGE__tableServiceUri": "https://bridgestore.table.core.windows.net",
    "BRIDGE_STORAGE__credential": "managedidentity",
    "BRIDGE_STORAGE__clientId": "11111111-2222-3333-4444-555555555555",
}


async def test_identity_based_settings_build_a_queue_client_with_the_managed_identity() -> None:
    connection = read_connection("BRIDGE_STORAGE", AZURE)
    assert connection.connection_string is None

    client = queue_client(connection, "learning-events")
    try:
        assert client.url == "https://bridgestore.queue.core.windows.net/learning-events"
        assert isinstance(client.credential, ManagedIdentityCredential)
        assert connection.settings["clientid"] == AZURE["BRIDGE_STORAGE__clientId"]
    finally:
        await client.close()
        await client.credential.close()


async def test_a_connection_string_wins_over_identity_settings() -> None:
    environ = {**AZURE, "BRIDGE_STORAGE": "UseDevelopmentStorage=true"}
    client = queue_client(read_connection("BRIDGE_STORAGE", environ), "learning-events")
    try:
        assert client.url.startswith("http://127.0.0.1:10001/devstoreaccount1/learning-events")
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("settings", "queue_url", "blob_url"),
    [
        (
            {"X__serviceUri": "https://one.example/"},
            "https://one.example/q",
            "https://one.example/",
        ),
        (
            {"X__accountName": "acct"},
            "https://acct.queue.core.windows.net/q",
            "https://acct.blob.core.windows.net/",
        ),
        (
            {"X__queueServiceUri": "https://q.example", "X__blobServiceUri": "https://b.example"},
            "https://q.example/q",
            "https://b.example/",
        ),
    ],
)
async def test_service_uri_account_name_and_per_service_uris_are_read_as_the_host_reads_them(
    settings: dict[str, str], queue_url: str, blob_url: str
) -> None:
    """StorageClientProvider.TryGetServiceUri: accountName, else <service>ServiceUri; the client
    factory's `serviceUri` otherwise. Without `credential`: DefaultAzureCredential."""
    connection = read_connection("X", settings)
    queue, blobs = queue_client(connection, "q"), blob_service(connection)
    try:
        assert queue.url == queue_url
        assert blobs.url == blob_url
        assert isinstance(queue.credential, DefaultAzureCredential)
    finally:
        for client in (queue, blobs):
            await client.close()
            await client.credential.close()


async def test_a_client_secret_gives_a_client_secret_credential() -> None:
    connection = read_connection(
        "X",
        {
            "X__serviceUri": "https://s.example",
            "X__tenantId": "t",
            "X__clientId": "c",
            "X__clientSecret": "s",
        },
    )
    credential = connection.credential()
    try:
        assert isinstance(credential, ClientSecretCredential)
    finally:
        await credential.close()


def test_the_prefixed_setting_is_found_first_and_names_compare_without_case() -> None:
    """WebJobsConfigurationExtensions.GetWebJobsConnectionStringSection: AzureWebJobs<name>, then <name>;
    .NET configuration keys ignore case."""
    environ = {"AzureWebJobsX": "prefixed", "X": "plain", "azurewebjobsstorage__ACCOUNTNAME": "acct"}
    assert read_connection("X", environ).connection_string == "prefixed"
    assert read_connection("", environ).settings == {"accountname": "acct"}


def test_a_missing_connection_is_named_in_the_hosts_words() -> None:
    with pytest.raises(ConnectionMissing, match="'AzureWebJobsBRIDGE_STORAGE' does not exist"):
        read_connection("BRIDGE_STORAGE", {})
