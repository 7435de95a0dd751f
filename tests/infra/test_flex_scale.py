"""Flex Consumption's scale and concurrency: set in Bicep (host.json's HTTP limits do not apply on Flex),
checked offline (a misspelt property would be ignored by the platform and by every other check), and the
cap on Graph writes in flight stated with its arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

from devtools import infra_check
from tests.infra.bicep import INFRA, bicep_files, config, parsed

APP = "modules/functionapp.bicep"
ROOT = INFRA.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_every_function_app_sets_its_scale_block_with_known_properties_in_range() -> None:
    for path in bicep_files():
        assert infra_check.flex_scale(path) == [], path


def test_the_offline_check_refuses_a_misspelt_missing_or_unbounded_scale_setting() -> None:
    findings = infra_check.flex_scale(FIXTURES / "flex-scale-problems.bicep")
    assert findings == [
        "resource misspelt: scaleAndConcurrency.triggers.http.perInstanceConcurency is not a property ARM "
        "knows",
        "resource misspelt: scaleAndConcurrency.triggers.http.perInstanceConcurrency must be set",
        "resource unbounded: scaleAndConcurrency.maximumInstanceCount comes from parameter instances, which "
        "needs @minValue(1) and @maxValue(1000) or tighter",
        "resource unbounded: scaleAndConcurrency.triggers.http.perInstanceConcurrency is 0, outside 1..1000",
        "resource unbounded: scaleAndConcurrency.instanceMemoryMB 3000 is not one of [512, 2048, 4096]",
    ]
    assert infra_check.main([str(FIXTURES / "flex-scale-problems.bicep")]) == 1


def test_http_concurrency_per_instance_is_set_in_bicep_and_matches_the_worker_threads() -> None:
    """Flex applies functionAppConfig.scaleAndConcurrency.triggers.http.perInstanceConcurrency, not
    host.json's maxConcurrentRequests (azure-functions-host#11790). The synchronous HTTP functions run
    on the Python worker's thread pool: as many threads as requests an instance is given."""
    scale = config(APP, "site")["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["triggers"] == {"http": {"perInstanceConcurrency": "httpPerInstanceConcurrency"}}
    settings = parsed(APP)["variables"]["identitySettings"]["value"]
    assert "httpPerInstanceConcurrency" in json.dumps(settings["PYTHON_THREADPOOL_THREAD_COUNT"])
    main = parsed("main.bicep")
    assert main["parameters"]["httpPerInstanceConcurrency"]["default"] == 16
    params = main["modules"]["app"]["config"]["params"]
    assert params["httpPerInstanceConcurrency"] == "httpPerInstanceConcurrency"


def test_host_json_sets_no_http_limit_that_flex_would_ignore() -> None:
    http = json.loads((ROOT / "host.json").read_text())["extensions"]["http"]
    assert http == {"routePrefix": "api"}


#: The stated cap on Graph requests in flight across instances (docs/deploy/index.md).
GRAPH_CAP = 240


def test_the_cap_on_graph_writes_in_flight_is_instances_times_messages_per_instance() -> None:
    """Only apply_event writes to Graph, and it is a function group of its own on Flex: at most
    maximumInstanceCount instances, each holding at most batchSize + newBatchThreshold messages (the
    Storage Queues extension's QueueListener refills at newBatchThreshold), each message waiting on at
    most one Graph request at a time."""
    scale = config(APP, "site")["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["maximumInstanceCount"] == "maximumInstanceCount"
    main = parsed("main.bicep")
    assert main["modules"]["app"]["config"]["params"]["maximumInstanceCount"] == "maximumInstanceCount"
    instances = main["parameters"]["maximumInstanceCount"]["default"]
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    per_instance = queues["batchSize"] + queues["newBatchThreshold"]
    assert instances * per_instance == GRAPH_CAP
    deploy = (ROOT / "docs" / "deploy" / "index.md").read_text(encoding="utf-8")
    assert f"{instances} \N{MULTIPLICATION SIGN} {per_instance} = {GRAPH_CAP}" in deploy
