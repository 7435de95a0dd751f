"""Review 10 (`azd up` works the first time and after `azd down`; one bad source never takes the
bridge down): what would still fail, each as a test that fails until it is fixed.

References: the Flex Consumption quickstarts (Azure-Samples/functions-quickstart-python-http-azd,
functions-quickstart-python-azd-otel), Azure Storage's list of regions with zone-redundant storage
(learn.microsoft.com/azure/storage/common/redundancy-regions-zrs), and the Bicep compiler's
deploy-time-constant rules (Azure/bicep: DeployTimeConstantContainerVisitor collects every
if-condition and for-expression; BCP177 and BCP182 are errors).
"""

from pathlib import Path

import pytest

from devtools.deploy_time import check_file
from tests.infra.bicep import config, parsed
from tests.infra.test_packaging import ignored

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STORAGE = "modules/storage.bicep"

#: Regions where a standard general-purpose v2 account can be Standard_ZRS (public cloud), as listed by
#: "Azure regions that support zone-redundant storage (ZRS)". Regions without availability zones
#: refuse the SKU when the account is created.
ZRS_REGIONS = frozenset(
    {
        "southafricanorth",
        "australiaeast",
        "centralindia",
        "eastasia",
        "japaneast",
        "koreacentral",
        "southeastasia",
        "francecentral",
        "germanywestcentral",
        "italynorth",
        "northeurope",
        "norwayeast",
        "polandcentral",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "uksouth",
        "westeurope",
        "israelcentral",
        "qatarcentral",
        "uaenorth",
        "canadacentral",
        "centralus",
        "eastus",
        "eastus2",
        "mexicocentral",
        "southcentralus",
        "westus2",
        "westus3",
        "brazilsouth",
    }
)


def _allowed_locations() -> list[str]:
    decorators = parsed("main.bicep")["parameters"]["location"]["decorators"]
    [allowed] = [d["argument"] for d in decorators if d.get("type") == "allowed"]
    return list(allowed)


def test_the_storage_account_sku_exists_in_every_region_azd_offers() -> None:
    """azd offers every region in `location`'s @allowed list; `azd up` in one of them must not fail at
    the storage account. Standard_ZRS exists only in regions with availability zones: australiasoutheast,
    northcentralus, southindia, ukwest, westcentralus and westus (all in the list, all Flex Consumption
    regions) refuse it, so the first `azd up` there stops at the storage account."""
    sku = config(STORAGE, "account")["sku"]["name"]
    if not sku.endswith("ZRS"):
        return
    without_zrs = sorted(set(_allowed_locations()) - ZRS_REGIONS)
    assert without_zrs == [], (
        f"{STORAGE} asks for {sku}, which these allowed regions do not offer: {without_zrs}. "
        "Use Standard_LRS there (e.g. a redundancy chosen per region, or a parameter), or drop them."
    )


def _findings_for(where: str) -> list[str]:
    found = check_file(FIXTURES / "runtime-conditions-and-bodies.bicep")
    return [f"{f.what}: {f.because}" for f in found if f.where == where]


def test_a_runtime_value_in_a_variables_for_body_is_refused_as_bcp182() -> None:
    """`var x = [for ...: account.properties...]`: ARM evaluates a variable's copy loop, body and all,
    when the deployment starts, so Bicep refuses a runtime value in the body (BCP182). The offline
    check looks only at the loop's source and passes the file the compiler refuses."""
    findings = _findings_for("variable endpoints")
    assert findings, "BCP182 (runtime value in a variable's for-body) is not caught"
    assert any("account.properties" in f for f in findings), findings


def test_a_runtime_value_in_a_resources_if_condition_is_refused_as_bcp177() -> None:
    """`resource ... = if (account.properties.isHnsEnabled)`: a condition must be computable when the
    deployment starts (BCP177); the offline check never reads conditions."""
    findings = _findings_for("resource byCondition")
    assert findings, "BCP177 (runtime value in a resource's if-condition) is not caught"
    assert any("account.properties" in f for f in findings), findings


def test_a_module_output_in_a_modules_if_condition_is_refused_as_bcp177() -> None:
    findings = _findings_for("module byModuleCondition")
    assert findings, "BCP177 (a module output in a module's if-condition) is not caught"
    assert any("child.outputs" in f for f in findings), findings


@pytest.mark.parametrize("path", [".env", ".envrc", ".python_packages/lib/site-packages/x.py", ".coverage"])
def test_common_local_files_that_hold_secrets_or_local_builds_are_not_shipped(path: str) -> None:
    """azd ships everything .funcignore does not list. A root `.env`/`.envrc` (python-dotenv, direnv)
    typically holds secrets; `.python_packages` is what `func` builds locally and would sit next to the
    remote build's packages on the Flex instance; `.coverage` is a test artifact."""
    assert ignored(path), f".funcignore lets {path} ship"
