"""Building the Table storage client from the app settings (connection string or Entra identity)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.config.settings import Settings
from shared.storage.proxies import trust_environment

if TYPE_CHECKING:
    from azure.data.tables.aio import TableServiceClient


def table_service_client(settings: Settings) -> TableServiceClient:
    """The state store's client. Identity-based storage uses the managed identity only when the settings
    say so (`BRIDGE_STORAGE__credential=managedidentity`, as in the app); otherwise, as the Functions
    host does, DefaultAzureCredential, so the operators' CLI works with their own az/azd sign-in."""
    from azure.data.tables.aio import TableServiceClient

    if settings.storage_connection_string is not None:
        return TableServiceClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), transport=_transport()
        )
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    assert settings.storage_table_service_uri is not None  # load_settings guarantees it
    credential: ManagedIdentityCredential | DefaultAzureCredential
    if settings.storage_managed_identity:
        credential = ManagedIdentityCredential(client_id=settings.storage_client_id)
    else:
        credential = DefaultAzureCredential()
    return TableServiceClient(
        settings.storage_table_service_uri, credential=credential, transport=_transport()
    )


def _transport() -> Any:
    """azure-core's aiohttp transport, trusting the environment only when it configures something
    the client reads from it (see shared.storage.proxies)."""
    from azure.core.pipeline.transport import AioHttpTransport

    return AioHttpTransport(use_env_settings=trust_environment())
