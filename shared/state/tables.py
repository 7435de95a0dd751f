"""Building the Table storage client from the app settings (connection string or managed identity)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.config.settings import Settings

if TYPE_CHECKING:
    from azure.data.tables.aio import TableServiceClient


def table_service_client(settings: Settings) -> TableServiceClient:
    from azure.data.tables.aio import TableServiceClient

    if settings.storage_connection_string is not None:
        return TableServiceClient.from_connection_string(
            settings.storage_connection_string.get_secret_value()
        )
    from azure.identity.aio import ManagedIdentityCredential

    assert settings.storage_table_service_uri is not None  # load_settings guarantees it
    credential = ManagedIdentityCredential(client_id=settings.storage_client_id)
    return TableServiceClient(settings.storage_table_service_uri, credential=credential)
