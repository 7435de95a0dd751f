"""Storage connections read as the Functions host reads them, and the clients built from them.

A binding's `connection` names an app setting (a section of the host's configuration, where `__` in an
environment variable is `:`). The host (Azure/azure-sdk-for-net
sdk/extensions/Microsoft.Azure.WebJobs.Extensions.Clients/src/Shared/WebJobsConfigurationExtensions.cs,
`GetWebJobsConnectionStringSection`) looks for `AzureWebJobs<name>` first, then `<name>`, each under
`ConnectionStrings` first. A section with a value is a connection string, which wins
(src/Shared/StorageClientProvider.cs of the same package, `CreateClient`: "If connection string is
present, it will be honored first"). Otherwise `TryGetServiceUri` takes `accountName` (then
https://<account>.<queue|blob>.core.windows.net), else `<queue|blob>ServiceUri`; failing both, the
Azure.Core client factory (sdk/extensions/Microsoft.Extensions.Azure/src/Internal/ClientFactory.cs,
`CreateClient`) matches the client's constructor parameter `serviceUri`. The credential
(`ClientFactory.CreateCredential`): `credential` = managedidentity gives ManagedIdentityCredential with
`clientId`; `tenantId` + `clientId` + `clientSecret` give ClientSecretCredential; anything else the
factory's default, DefaultAzureCredential (AzureComponentFactoryImpl.CreateTokenCredential falls back
to the global CredentialFactory). Setting names compare without case, as .NET configuration keys do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.pipeline.transport import AioHttpTransport

#: The host's own storage (locks, timer status): the connection named "Storage", prefixed.
HOST_STORAGE = "Storage"


class ConnectionMissing(LookupError):
    """No app setting holds the named connection."""


@dataclass(frozen=True)
class Connection:
    """One storage connection: a connection string, or identity-based settings (lower-cased keys)."""

    name: str
    connection_string: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)

    def service_uri(self, service: str) -> str | None:
        """The endpoint of `service` ("queue", "blob") for identity-based settings."""
        account = self.settings.get("accountname")
        if account:
            return f"https://{account}.{service}.core.windows.net"
        return self.settings.get(f"{service}serviceuri") or self.settings.get("serviceuri")

    def credential(self) -> Any:
        """The token credential the host would build for this connection (async, for aio clients)."""
        from azure.identity.aio import (
            ClientSecretCredential,
            DefaultAzureCredential,
            ManagedIdentityCredential,
        )

        kind = self.settings.get("credential", "")
        client_id = self.settings.get("clientid")
        if kind.lower() == "managedidentity":
            return ManagedIdentityCredential(client_id=client_id)
        tenant, secret = self.settings.get("tenantid"), self.settings.get("clientsecret")
        if tenant and client_id and secret:
            return ClientSecretCredential(tenant, client_id, secret)
        return DefaultAzureCredential()


def read_connection(name: str, environ: Mapping[str, str] | None = None) -> Connection:
    """The connection named `name` (a binding's `connection`; empty: the host's own storage)."""
    env = {k.lower(): v for k, v in (os.environ if environ is None else environ).items()}
    name = name or HOST_STORAGE
    for candidate in (f"AzureWebJobs{name}", name):
        for key in (f"connectionstrings__{candidate}".lower(), candidate.lower()):
            prefix = key + "__"
            settings = {k[len(prefix) :]: v for k, v in env.items() if k.startswith(prefix)}
            if env.get(key):
                return Connection(name, connection_string=env[key], settings=settings)
            if settings:
                return Connection(name, settings=settings)
    raise ConnectionMissing(
        f"Storage account connection string 'AzureWebJobs{name}' does not exist. "
        "Make sure that it is a defined App Setting."
    )


def _local_transport() -> AioHttpTransport:
    """A transport that does not read the environment on every request: azure-core's default makes
    aiohttp look up ~/.netrc and the proxy variables in a worker thread per request, CPU that the bench
    would count as the worker's (the Functions host polls in .NET, outside the worker). Used for
    connection strings (the local emulator, never behind a proxy)."""
    return AioHttpTransport(use_env_settings=False)


def queue_client(connection: Connection | str, queue_name: str) -> Any:
    """An aio QueueClient for `queue_name`, without message encoding (the dev host decodes itself)."""
    from azure.storage.queue.aio import QueueClient

    if isinstance(connection, str):
        connection = Connection("", connection_string=connection)
    if connection.connection_string:
        return QueueClient.from_connection_string(
            connection.connection_string, queue_name, transport=_local_transport()
        )
    endpoint = connection.service_uri("queue")
    if endpoint is None:
        raise ConnectionMissing(
            f"connection {connection.name!r} has no queueServiceUri, serviceUri or accountName"
        )
    return QueueClient(endpoint, queue_name, credential=connection.credential())


def blob_service(connection: Connection | str) -> Any:
    """An aio BlobServiceClient for the connection (the host's locks and timer status)."""
    from azure.storage.blob.aio import BlobServiceClient

    if isinstance(connection, str):
        connection = Connection("", connection_string=connection)
    if connection.connection_string:
        return BlobServiceClient.from_connection_string(
            connection.connection_string, transport=_local_transport()
        )
    endpoint = connection.service_uri("blob")
    if endpoint is None:
        raise ConnectionMissing(
            f"connection {connection.name!r} has no blobServiceUri, serviceUri or accountName"
        )
    return BlobServiceClient(endpoint, credential=connection.credential())
