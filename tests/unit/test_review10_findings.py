"""Review 10: the operator's storage roles must be usable by the operators' CLI.

`infra/` grants the deploying user (azd's `principalId`) Storage Queue and Table Data Contributor "for
the CLI" (status, deadletters, replay), and the storage account refuses shared keys, so a connection
string cannot work: the CLI must reach the deployed queues and tables with the operator's own Entra
sign-in (`az login` / azd). Following the Functions convention for identity-based connections, only
`BRIDGE_STORAGE__credential=managedidentity` (what the template sets in the app) means a managed
identity; without it, settings name a developer or operator credential (DefaultAzureCredential in the
Functions host). Today both clients always use ManagedIdentityCredential, which works only on Azure
compute: from an operator's machine every storage command fails to authenticate.
"""

from collections.abc import Callable
from typing import Any

import pytest

from shared.config import load_settings
from shared.state.tables import table_service_client
from shared.storage.queues import queue_service_client

OPERATOR = {
    # What an operator sets to run `python -m shared.cli status` against the deployed account
    # (BRIDGE_STORAGE__* from the app's settings, without the app's managed-identity switch).
    "BRIDGE_SOURCES": '{"generic": {"format": "generic"}}',
    "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
    "BRIDGE_STORAGE__queueServiceUri": "https://stexample.queue.core.windows.net",
    "BRIDGE_STORAGE__tableServiceUri": "https://stexample.table.core.windows.net",
}


@pytest.mark.parametrize("client", [table_service_client, queue_service_client], ids=["tables", "queues"])
def test_without_the_managed_identity_switch_storage_uses_the_operators_sign_in(
    client: Callable[..., Any],
) -> None:
    settings = load_settings(OPERATOR)
    built = client(settings)
    credential = type(built.credential).__name__
    assert credential != "ManagedIdentityCredential", (
        "identity-based storage without BRIDGE_STORAGE__credential=managedidentity must use a credential "
        "an operator's machine has (e.g. DefaultAzureCredential / AzureCliCredential); a bare "
        "ManagedIdentityCredential makes the operator's queue and table roles unusable by the CLI"
    )
