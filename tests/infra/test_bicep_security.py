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
    assert properties.get("enableSoftDelete") is True, "deleted secrets must stay recoverable"


def test_purge_protection_is_a_parameter_off_by_default_so_azd_down_then_up_works() -> None:
    """On, a deleted vault's name stays taken for 90 days; Key Vault refuses `false` (null is off)."""
    purge = config("modules/keyvault.bicep", "vault")["properties"]["enablePurgeProtection"]
    assert purge == {
        "operator": {
            "type": "conditional",
            "operands": {"condition": "purgeProtection", "true_value": True, "false_value": None},
        }
    }
    assert parsed("modules/keyvault.bicep")["parameters"]["purgeProtection"]["default"] is False
    main = parsed("main.bicep")
    assert main["parameters"]["keyVaultPurgeProtection"]["default"] is False
    assert main["modules"]["vault"]["config"]["params"]["purgeProtection"] == "keyVaultPurgeProtection"


def test_the_deploying_user_gets_the_data_roles_an_operator_needs() -> None:
    """azd fills principalId with the signed-in user: secrets in Key Vault, the CLI's queue and tables."""
    main = parsed("main.bicep")
    assert main["parameters"]["principalId"]["default"] == ""
    assert "${AZURE_PRINCIPAL_ID" in (INFRA / "main.parameters.json").read_text()
    for module in ("vault", "storage"):
        assert main["modules"][module]["config"]["params"]["operatorPrincipalId"] == "principalId"
    officer = config("modules/keyvault.bicep", "officer")["config"]  # under its condition
    assert "b86a8fe4-44ce-4948-aee5-eccb2c155cd7" in strings_in(parsed("modules/keyvault.bicep")["variables"])
    assert officer["properties"]["principalId"] == "operatorPrincipalId"
    operator_roles = parsed(STORAGE)["variables"]["operatorRoles"]["value"]
    assert set(operator_roles.values()) == {
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
    }


def test_location_is_an_azd_location_limited_to_flex_consumption_regions() -> None:
    decorators = parsed("main.bicep")["parameters"]["location"]["decorators"]
    text = json.dumps(decorators)
    assert '"type": "location"' in text, "azd location metadata"
    assert "westeurope" in text, "an @allowed list of Flex Consumption regions"
    assert "eastus2euap" not in text, "a canary region ordinary subscriptions cannot use"


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
    assert "identitySettings" in json.dumps(config(APP, "appSettings")["properties"])
    for connection in ("AzureWebJobsStorage", "BRIDGE_STORAGE"):
        assert settings[f"{connection}__credential"] == "managedidentity", (
            f"{connection} must use the identity (without the switch: DefaultAzureCredential)"
        )
        assert f"{connection}__clientId" in settings
    assert "Authorization=AAD" in str(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])
    for path in bicep_files():
        assert "AccountKey" not in path.read_text(), f"{path.name} mentions a storage account key"
        assert "listKeys" not in path.read_text(), f"{path.name} reads keys"


def test_app_settings_are_one_object_in_their_own_resource() -> None:
    """The quickstarts' shape: union() of objects, no loop (the connection string is a runtime value)."""
    settings = resources_of_type("Microsoft.Web/sites/config")
    assert [(file, symbol) for file, symbol, _ in settings] == [(APP, "appSettings")]
    body = config(APP, "appSettings")
    assert body["name"] == "appsettings"
    assert body["parent"] == "site"
    assert body["properties"]["function"]["type"] == "union"
    assert "appSettings" not in config(APP, "site")["properties"]["siteConfig"], "settings live in one place"


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


def test_content_writes_are_granted_only_when_the_parameter_asks_for_them() -> None:
    """`catalog push` and registerContent need LearningContent.ReadWrite.All; nothing else does."""
    module = parsed("modules/graph-permissions.bicep")
    assert module["parameters"]["contentWrites"]["default"] is False
    assert "LearningContent.ReadWrite.All" not in module["parameters"]["appRoles"]["default"]
    assert module["variables"]["contentRoles"]["value"] == _only_if(
        "contentWrites", "LearningContent.ReadWrite.All"
    )
    assert module["variables"]["roles"]["value"] == {
        "function": {
            "type": "concat",
            "parameters": {"arg_1": "appRoles", "arg_2": "contentRoles", "arg_3": "assignmentRoles"},
        }
    }
    assert module["resources"]["grants"]["config"]["loop_type"]["detail"]["array_name"] == "roles"
    main = parsed("main.bicep")
    assert main["parameters"]["enableContentWrites"]["default"] is False
    params = main["modules"]["graphPermissions"]["config"]["config"]["params"]
    assert params["contentWrites"] == "enableContentWrites"


def _only_if(condition: str, role: str) -> dict[str, object]:
    return {
        "operator": {
            "type": "conditional",
            "operands": {"condition": condition, "true_value": [role], "false_value": []},
        }
    }


def test_assignments_are_granted_and_announced_to_the_app_only_when_the_parameter_enables_them() -> None:
    """learningAssignment writes need LearningAssignedCourse.ReadWrite.All (the least privileged of the
    two the Create page lists); the app learns it from BRIDGE_ASSIGNMENTS_ENABLED, set from the same
    parameter, and refuses assignments without it."""
    module = parsed("modules/graph-permissions.bicep")
    assert module["parameters"]["assignments"]["default"] is False
    assert "LearningAssignedCourse.ReadWrite.All" not in module["parameters"]["appRoles"]["default"]
    assert module["variables"]["assignmentRoles"]["value"] == _only_if(
        "assignments", "LearningAssignedCourse.ReadWrite.All"
    )
    main = parsed("main.bicep")
    assert main["parameters"]["enableAssignments"]["default"] is False
    assert (
        main["modules"]["graphPermissions"]["config"]["config"]["params"]["assignments"]
        == "enableAssignments"
    )
    assert main["modules"]["app"]["config"]["params"]["assignmentsEnabled"] == "enableAssignments"
    app = parsed("modules/functionapp.bicep")
    assert app["parameters"]["assignmentsEnabled"]["default"] is False
    assert app["variables"]["bridgeSettings"]["value"]["BRIDGE_ASSIGNMENTS_ENABLED"] == {
        "function": {"type": "string", "parameters": {"value_to_convert": "assignmentsEnabled"}}
    }


def test_alerts_cover_dead_letters_failure_rate_silence_and_an_app_that_cannot_run() -> None:
    rules = {symbol for _, symbol, _ in resources_of_type("Microsoft.Insights/scheduledQueryRules")}
    assert rules == {"deadLetters", "tenantWide", "failureRate", "silence", "sourceSilence", "unconfigured"}
    for _, symbol, rule in resources_of_type("Microsoft.Insights/scheduledQueryRules"):
        assert rule["config"]["properties"].get("skipQueryValidation") is True, (
            f"{symbol}: AppMetrics does not exist in a new workspace; the query must not be validated"
        )
    assert "noEventsPeriod" in parsed("main.bicep")["parameters"]


def test_a_source_gone_quiet_alerts_on_its_own_and_names_itself() -> None:
    """Issue 19: a source that normally sends and has sent nothing for its configured period raises
    an alert naming the source (the `source` dimension), with per-source periods from main.bicep."""
    [rule] = [
        r
        for _, symbol, r in resources_of_type("Microsoft.Insights/scheduledQueryRules")
        if symbol == "sourceSilence"
    ]
    properties = rule["config"]["properties"]
    [criterion] = properties["criteria"]["allOf"]
    assert criterion["dimensions"] == [{"name": "source", "operator": "Include", "values": ["*"]}]
    assert "silencePeriods" in criterion["query"]
    assert "sourceSilenceHours" in criterion["query"]
    main = parsed("main.bicep")["parameters"]
    assert main["sourceSilenceHours"]["default"] == 12
    assert main["sourceSilenceHoursBySource"]["default"] == {}


def test_a_workbook_is_deployed_with_the_rest() -> None:
    [(_, _, workbook)] = resources_of_type("Microsoft.Insights/workbooks")
    assert workbook["config"]["properties"]["sourceId"] == "appInsightsId"


def test_workbook_histograms_are_read_as_per_interval_sums_and_counts() -> None:
    """Each histogram row holds an interval's sum/count/min/max: the mean is sum(valueSum)/sum(valueCount),
    and no percentile or average of `value` (which is a sum) means anything."""
    queries = [
        text for text in strings_in(parsed("modules/workbook.bicep")["variables"]) if "customMetrics" in text
    ]
    histograms = [q for q in queries if "bridge.event.lag" in q or "bridge.graph.duration" in q]
    assert histograms, "the workbook charts the lag and the Graph duration"
    for query in histograms:
        assert "sum(valueSum) / sum(valueCount)" in query or "sumif(valueSum" in query, query
        assert "percentile" not in query, query
        assert not re.search(r"avg(if)?\(value\b", query), query


def test_azd_deploys_the_function_app() -> None:
    text = (INFRA.parent / "azure.yaml").read_text()
    assert "host: function" in text
    assert "language: python" in text
    assert "'azd-service-name': 'api'" in (INFRA / APP).read_text()


def test_an_alert_fires_when_the_host_indexed_no_function_or_the_app_is_unconfigured() -> None:
    """Both leave the deployment "succeeded" and every request failing. The query searches the logs
    for the host's phrases and the app's own (the same constant the app logs with)."""
    from shared.functions.bridge import UNCONFIGURED

    alerts = parsed("modules/alerts.bicep")
    rule = alerts["resources"]["unconfigured"]["config"]["properties"]
    assert rule["severity"] == 1
    assert rule["evaluationFrequency"] == "PT5M"
    [criterion] = rule["criteria"]["allOf"]
    query = json.dumps(criterion["query"]) + json.dumps(alerts["variables"]["logText"])
    for phrase in ("Worker failed to index functions", "0 functions loaded", UNCONFIGURED):
        assert f'has \\"{phrase}\\"' in query, phrase
    assert "AppTraces" in query
    assert "AppExceptions" in query
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)


def test_an_alert_fires_on_each_tenant_wide_refusal_by_the_reason_the_worker_records() -> None:
    """tenantNotLicensed, providerNotEnabled, contentOfAnotherProvider: no event can be applied until an
    administrator acts, so severity 1, each reason its own alert (a dimension), names taken from the
    code that records them."""
    from shared.delivery.deadletters import TENANT_WIDE

    alerts = parsed("modules/alerts.bicep")
    rule = alerts["resources"]["tenantWide"]["config"]["properties"]
    assert (rule["severity"], rule["evaluationFrequency"]) == (1, "PT5M")
    [criterion] = rule["criteria"]["allOf"]
    query = json.dumps(criterion["query"]) + json.dumps(alerts["variables"]["tenantWideReasons"])
    assert 'outcome == \\"deadlettered\\"' in query
    named = set(re.findall(r'\\"(\w+)\\"', json.dumps(alerts["variables"]["tenantWideReasons"])))
    assert named == set(TENANT_WIDE)
    assert [d["name"] for d in criterion["dimensions"]] == ["reason"]
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
