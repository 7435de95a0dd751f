"""Contract tests: one suite of cases, run against a unit-test fake and against the real part it
stands in for (the Graph sandbox through msgraph-sdk, Azurite through the Azure SDKs). A fake that
answers differently from the real part fails here, so no unit test can pass on behaviour the real
part refuses.

The sandbox and Azurite are started once per session on free loopback ports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.localstack.processes import AzuritePorts, azurite, free_port, graph_sandbox
from tests.fakes import FakeGraph

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "sandbox-seed.json"
SEED_DOC: dict[str, Any] = json.loads(SEED.read_text(encoding="utf-8"))
ENABLED_PROVIDER = SEED_DOC["providers"][0]["id"]
DISABLED_PROVIDER = next(p["id"] for p in SEED_DOC["providers"] if not p["isCourseActivitySyncEnabled"])


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    service = graph_sandbox(port, seed=SEED, log_path=log).start()
    try:
        service.wait_ready(f"http://127.0.0.1:{port}/_sandbox/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        service.stop()


@pytest.fixture(scope="session")
def azurite_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuritePorts]:
    ports = AzuritePorts(free_port(), free_port(), free_port())
    log = tmp_path_factory.mktemp("azurite") / "azurite.log"
    service = azurite(ports, location=None, log_path=log).start()
    try:
        service.wait_ready(ports.queue)
        yield ports
    finally:
        service.stop()


def seeded_fake(provider: str = ENABLED_PROVIDER) -> FakeGraph:
    """A FakeGraph holding what the sandbox's seed holds (the same file), for `provider`."""
    fake = FakeGraph()
    fake.sync_enabled = next(p for p in SEED_DOC["providers"] if p["id"] == provider)[
        "isCourseActivitySyncEnabled"
    ]
    for user in SEED_DOC["users"]:
        fake.users_by_upn[user["userPrincipalName"].casefold()] = user["id"]
        if user.get("mail"):
            fake.users_by_mail[user["mail"].casefold()] = user["id"]
        for other in user.get("otherMails", []):
            fake.users_by[("otherMails", other.casefold())] = user["id"]
        for name, value in user.items():
            if name == "employeeId" or name.startswith(("extension_", "onPremisesSamAccountName")):
                fake.users_by[(name, value)] = user["id"]
    for content in SEED_DOC["contents"].get(provider, []):
        fake.contents[content["externalId"]] = f"content-{content['externalId']}"
    return fake
