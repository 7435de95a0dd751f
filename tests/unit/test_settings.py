import json
from pathlib import Path

import pytest

from shared.config import (
    ConfigurationError,
    GraphAuth,
    load_settings,
    load_source_settings,
    read_local_settings,
    secret_setting_name,
)
from tests.builders import TEST_SECRET

VALID = {
    "BRIDGE_SOURCES": '{"generic": {"format": "generic"}, "lms-a": {"format": "generic"}}',
    "BRIDGE_SOURCE_GENERIC_SECRET": TEST_SECRET,
    "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
    "BRIDGE_STORAGE": "UseDevelopmentStorage=true",
}


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    return caught.value.problems


def test_defaults_point_at_microsoft_graph_with_managed_identity() -> None:
    settings = load_settings(VALID)
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert settings.graph_auth is GraphAuth.MANAGED_IDENTITY
    assert settings.max_body_bytes == 1024 * 1024
    assert set(settings.sources) == {"generic", "lms-a"}


def test_every_missing_setting_nothing_works_without_is_reported_at_once() -> None:
    found = " ".join(problems({}))
    for name in ("BRIDGE_PROVIDER_REGISTRATION_ID", "BRIDGE_STORAGE"):
        assert name in found


def test_missing_sources_do_not_stop_the_app_they_are_reported() -> None:
    """The queue side works without any source: only the webhooks are out, and the app says why."""
    env = {k: v for k, v in VALID.items() if k != "BRIDGE_SOURCES"}
    settings = load_settings(env)
    assert settings.sources == {}
    assert settings.sources_problem is not None
    assert "BRIDGE_SOURCES is required" in settings.sources_problem


def test_a_secret_that_is_an_unresolved_key_vault_reference_is_no_secret() -> None:
    reference = "@Microsoft.KeyVault(VaultName=kv-abc;SecretName=source-generic)"
    settings = load_settings({**VALID, "BRIDGE_SOURCE_GENERIC_SECRET": reference})
    generic = settings.sources["generic"]
    assert generic.secret is None
    assert generic.secret_problem is not None
    assert "BRIDGE_SOURCE_GENERIC_SECRET is an unresolved Key Vault reference" in generic.secret_problem
    assert "kv-abc" not in generic.secret_problem
    assert "source-generic" not in generic.secret_problem


def test_a_secret_that_is_only_whitespace_is_no_secret() -> None:
    settings = load_settings({**VALID, "BRIDGE_SOURCE_GENERIC_SECRET": "   "})
    assert settings.sources["generic"].secret is None


def test_secret_setting_name_follows_the_source_name() -> None:
    assert secret_setting_name("lms-a") == "BRIDGE_SOURCE_LMS_A_SECRET"


def test_a_secret_inside_the_sources_setting_sets_that_source_aside_without_echoing_it() -> None:
    env = {
        **VALID,
        "BRIDGE_SOURCES": json.dumps(
            {"generic": {"format": "generic"}, "lms": {"format": "generic", "secret": "hunter2"}}
        ),
    }
    settings = load_settings(env)
    assert set(settings.sources) == {"generic"}
    message = settings.source_problems["lms"]
    assert "BRIDGE_SOURCE_LMS_SECRET" in message
    assert "hunter2" not in message


def test_malformed_sources_json_says_where() -> None:
    problem = load_settings({**VALID, "BRIDGE_SOURCES": "{generic"}).sources_problem
    assert problem is not None
    assert "not valid JSON" in problem


def test_source_names_must_be_url_safe() -> None:
    settings = load_settings({**VALID, "BRIDGE_SOURCES": '{"My Source": {"format": "generic"}}'})
    assert "a-z" in settings.source_problems["My Source"]


def test_the_cli_still_refuses_sources_it_cannot_use() -> None:
    """Tools that only read sources need every one of them: any problem is an error there."""
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_source_settings({"BRIDGE_SOURCES": "{generic"})


def test_anonymous_graph_is_only_for_a_loopback_sandbox() -> None:
    found = problems({**VALID, "BRIDGE_GRAPH_AUTH": "anonymous"})
    assert "loopback" in found[0]
    local = load_settings(
        {**VALID, "BRIDGE_GRAPH_AUTH": "anonymous", "BRIDGE_GRAPH_BASE_URL": "http://127.0.0.1:7072/v1.0/"}
    )
    assert local.graph_base_url == "http://127.0.0.1:7072/v1.0"


@pytest.mark.parametrize("value", ["0", "-5", "1MB"])
def test_body_limit_must_be_a_positive_number_of_bytes(value: str) -> None:
    assert "BRIDGE_MAX_BODY_BYTES" in problems({**VALID, "BRIDGE_MAX_BODY_BYTES": value})[0]


def test_identity_based_storage_is_accepted() -> None:
    env = {k: v for k, v in VALID.items() if k != "BRIDGE_STORAGE"}
    env["BRIDGE_STORAGE__queueServiceUri"] = "https://acct.queue.core.windows.net"
    assert "tableServiceUri" in problems(env)[0]  # the state store needs tables too
    env["BRIDGE_STORAGE__tableServiceUri"] = "https://acct.table.core.windows.net"
    settings = load_settings(env)
    assert settings.storage_queue_service_uri == "https://acct.queue.core.windows.net"
    assert settings.storage_table_service_uri == "https://acct.table.core.windows.net"
    assert settings.storage_connection_string is None


@pytest.mark.parametrize(
    ("credential", "managed"), [("managedidentity", True), ("ManagedIdentity", True), ("", False)]
)
def test_identity_based_storage_uses_the_managed_identity_only_when_told(
    credential: str, managed: bool
) -> None:
    """The Functions convention: `__credential=managedidentity` (set by infra/ in the app) means the
    managed identity; without it the clients use DefaultAzureCredential (the operator's sign-in)."""
    from shared.state.tables import table_service_client
    from shared.storage.queues import queue_service_client

    env = {k: v for k, v in VALID.items() if k != "BRIDGE_STORAGE"}
    env["BRIDGE_STORAGE__queueServiceUri"] = "https://acct.queue.core.windows.net"
    env["BRIDGE_STORAGE__tableServiceUri"] = "https://acct.table.core.windows.net"
    env["BRIDGE_STORAGE__clientId"] = "0f6b1c9e-2a4d-4e8f-9b3a-7c5d1e2f3a4b"
    if credential:
        env["BRIDGE_STORAGE__credential"] = credential
    settings = load_settings(env)
    assert settings.storage_managed_identity is managed
    expected = "ManagedIdentityCredential" if managed else "DefaultAzureCredential"
    for client in (table_service_client(settings), queue_service_client(settings)):
        assert type(client.credential).__name__ == expected


def test_secret_values_are_not_in_the_settings_repr() -> None:
    assert TEST_SECRET not in repr(load_settings(VALID))


def test_local_settings_files_that_are_absent_or_empty_add_nothing(tmp_path: Path) -> None:
    assert read_local_settings(tmp_path / "missing.json") == {}
    assert read_local_settings(Path("/dev/null")) == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        read_local_settings(broken)


def test_each_app_wide_problem_begins_with_the_setting_it_names() -> None:
    """What a 503 may show a caller: the settings to fix, never their values nor the problems' wording."""
    env = {
        "BRIDGE_SOURCES": VALID["BRIDGE_SOURCES"],
        "BRIDGE_GRAPH_BASE_URL": "ftp://nowhere",
        "BRIDGE_GRAPH_AUTH": "password",
        "BRIDGE_MAX_BODY_BYTES": "-1",
        "BRIDGE_PARK_TIMEOUT_HOURS": "soon",
        "BRIDGE_CLAIM_LEASE_SECONDS": "0",
        "BRIDGE_RETENTION_DAYS": "forever",
    }
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    assert caught.value.settings == [
        "BRIDGE_CLAIM_LEASE_SECONDS",
        "BRIDGE_GRAPH_AUTH",
        "BRIDGE_GRAPH_BASE_URL",
        "BRIDGE_MAX_BODY_BYTES",
        "BRIDGE_PARK_TIMEOUT_HOURS",
        "BRIDGE_PROVIDER_REGISTRATION_ID",
        "BRIDGE_RETENTION_DAYS",
        "BRIDGE_STORAGE",
    ]
    assert len(caught.value.problems) == len(caught.value.settings)
    for value in ("ftp://nowhere", "password", "soon", "forever"):
        assert value not in str(caught.value)


def test_assignments_are_off_unless_the_deployment_enables_them() -> None:
    assert load_settings(VALID).assignments_enabled is False
    assert load_settings({**VALID, "BRIDGE_ASSIGNMENTS_ENABLED": "True"}).assignments_enabled is True
    assert any(
        "BRIDGE_ASSIGNMENTS_ENABLED" in p for p in problems({**VALID, "BRIDGE_ASSIGNMENTS_ENABLED": "yes"})
    )
