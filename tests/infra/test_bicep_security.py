"""The deployment's security and operability properties, asserted on the parsed Bicep.

Each test names the property it protects; a failure message says what is wrong and where.
"""

import json
import re
import sys
from pathlib import Path

import pytest

from tests.infra.bicep import EXTENSION, INFRA, bicep_files, config, parsed, resources_of_type, strings_in

STORAGE = "modules/storage.bicep"
APP = "modules/functionapp.bicep"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    assert parsed(str(path.relative_to(INFRA))) is not None


def test_storage_refuses_shared_key_access() -> None:
    properties = config(STORAGE, "account")["properties"]
    assert properties.get("allowSharedKeyAccess") is False, f"{STORAGE}: allowSharedKeyAccess must be false"


def test_storage_requires_tls_1_2_and_https_and_no_public_blobs() -> None:
    properties = config(STORAGE, "account")["properties"]
    assert properties.get("minimumTlsVersion") == "TLS1_2", f"{STORAGE}: minimumTlsVersion must be TLS1_2"
    assert properties.get("supportsHttpsTrafficOnly") is True, f"{STORAGE}: HTTPS only must be on"
    assert properties.get("allowBlobPublicAccess") is False, f"{STORAGE}: public blob access must be off"


def test_storage_grants_the_identity_only_data_roles() -> None:
    roles = parsed(STORAGE)["variables"]["roles"]["value"]
    assert set(roles.values()) == {
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
    }, f"{STORAGE}: unexpected role set {roles}"


def test_no_broad_role_is_assigned_anywhere() -> None:
    broad = {
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
        "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
        "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    }
    for path in bicep_files():
        text = path.read_text()
        for role_id, name in broad.items():
            assert role_id not in text, f"{path.name} assigns {name}"


def test_application_insights_accepts_only_entra_authenticated_telemetry() -> None:
    insights = config("modules/monitoring.bicep", "appInsights")["properties"]
    assert insights.get("DisableLocalAuth") is True, "Application Insights must have DisableLocalAuth: true"
    workspace = config("modules/monitoring.bicep", "workspace")["properties"]
    assert workspace["features"].get("disableLocalAuth") is True, "Log Analytics must disable local auth"
    assert "WorkspaceResourceId" in insights, "Application Insights must be workspace-based"
    publisher = config("modules/monitoring.bicep", "publisher")["properties"]
    assert "3913510d-42f4-4e42-8a64-420c390055eb" in strings_in(
        parsed("modules/monitoring.bicep")["variables"]
    ), "the identity needs Monitoring Metrics Publisher"
    assert publisher["principalType"] == "ServicePrincipal"


def test_key_vault_uses_rbac_and_keeps_deleted_secrets() -> None:
    properties = config("modules/keyvault.bicep", "vault")["properties"]
    assert properties.get("enableRbacAuthorization") is True, "Key Vault must be in RBAC mode"
    assert properties.get("enablePurgeProtection") is True, "Key Vault must have purge protection"


def test_no_secret_is_a_parameter_default_or_an_output() -> None:
    secretish = re.compile(r"secret|password|key(?!_?vault)|token|connectionstring", re.IGNORECASE)
    for path in bicep_files():
        document = parsed(str(path.relative_to(INFRA)))
        for name, parameter in document.get("parameters", {}).items():
            if secretish.search(name):
                assert parameter.get("default") is None, f"{path.name}: parameter {name} has a default"
        for name in document.get("outputs", {}):
            assert not secretish.search(name), f"{path.name}: output {name} looks like a secret"
    assert not any(
        path.name.endswith("parameters.json") and "whsec_" in path.read_text() for path in INFRA.iterdir()
    )


def test_the_site_is_hardened() -> None:
    site = config(APP, "site")
    properties, site_config = site["properties"], site["properties"]["siteConfig"]
    assert properties.get("httpsOnly") is True, "httpsOnly must be true"
    assert site_config.get("minTlsVersion") == "1.2", "minTlsVersion must be 1.2"
    assert site_config.get("ftpsState") == "Disabled", "FTPS must be disabled"
    assert site_config.get("remoteDebuggingEnabled") is False, "remote debugging must be off"
    for symbol in ("ftpCredentials", "scmCredentials"):
        assert config(APP, symbol)["properties"] == {"allow": False}, (
            f"{symbol}: basic publishing credentials must be off"
        )


def test_the_app_runs_on_flex_consumption_with_the_tests_python() -> None:
    plan = config(APP, "plan")
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}, (
        "the plan must be Flex Consumption (FC1)"
    )
    runtime = config(APP, "site")["properties"]["functionAppConfig"]["runtime"]
    tested = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert runtime == {"name": "python", "version": tested}, (
        f"runtime {runtime} is not the tested Python {tested}"
    )


def test_everything_uses_the_user_assigned_identity_and_no_key() -> None:
    site = config(APP, "site")
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert deployment["type"] == "UserAssignedIdentity"
    settings = parsed(APP)["variables"]["identitySettings"]["value"]
    for connection in ("AzureWebJobsStorage", "BRIDGE_STORAGE"):
        assert settings[f"{connection}__credential"] == "managedidentity", (
            f"{connection} must use the identity"
        )
        assert f"{connection}__clientId" in settings
    assert "Authorization=AAD" in str(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])
    for path in bicep_files():
        assert "AccountKey" not in path.read_text(), f"{path.name} mentions a storage account key"
        assert "listKeys" not in path.read_text(), f"{path.name} reads keys"


def test_source_secrets_are_key_vault_references() -> None:
    value = parsed(APP)["variables"]["sourceSecrets"]
    assert "@Microsoft.KeyVault(VaultName=" in json.dumps(value), (
        "source secrets must be Key Vault references"
    )


def test_graph_permissions_are_least_privilege_and_skippable() -> None:
    module = "modules/graph-permissions.bicep"
    assert EXTENSION in (INFRA / module).read_text(), "the Graph module must declare the Graph extension"
    roles = parsed(module)["parameters"]["appRoles"]["default"]
    assert sorted(roles) == [
        "LearningContent.Read.All",
        "LearningSelfInitiatedCourse.ReadWrite.All",
        "User.Read.All",
    ]
    assert parsed(module)["resources"]["grants"]["type"] == "Microsoft.Graph/appRoleAssignedTo"
    main = parsed("main.bicep")
    assert "grantGraphPermissions" in main["parameters"]
    assert "grantGraphPermissions" in json.dumps(main["modules"]["graphPermissions"]), (
        "the grant must be skippable"
    )


def test_alerts_cover_dead_letters_failure_rate_and_silence() -> None:
    rules = {symbol for _, symbol, _ in resources_of_type("Microsoft.Insights/scheduledQueryRules")}
    assert rules == {"deadLetters", "failureRate", "silence"}
    assert "noEventsPeriod" in parsed("main.bicep")["parameters"]


def test_a_workbook_is_deployed_with_the_rest() -> None:
    [(_, _, workbook)] = resources_of_type("Microsoft.Insights/workbooks")
    assert workbook["config"]["properties"]["sourceId"] == "appInsightsId"


def test_azd_deploys_the_function_app() -> None:
    text = (INFRA.parent / "azure.yaml").read_text()
    assert "host: function" in text
    assert "language: python" in text
    assert "'azd-service-name': 'api'" in (INFRA / APP).read_text()
