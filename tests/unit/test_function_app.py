"""The Functions entry point: what the host indexes, cold-start cost, start-up validation."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.builders import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "BRIDGE_SOURCES": '{"generic": {"format": "generic"}}',
    "BRIDGE_SOURCE_GENERIC_SECRET": TEST_SECRET,
    "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
    "BRIDGE_STORAGE": "UseDevelopmentStorage=true",
}


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_importing_the_app_imports_neither_msgraph_nor_unconfigured_formats() -> None:
    result = run_python(
        "import sys, function_app\n"
        "heavy = ('msgraph', 'msgraph_core', 'kiota_http', 'jwt', 'cryptography')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))",
        ENV,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_app_declares_the_routes_and_queue_the_host_needs() -> None:
    result = run_python(
        "import json, function_app\n"
        "functions = function_app.app.get_functions()\n"
        "print(json.dumps([json.loads(f.get_function_json()) for f in functions]))",
        ENV,
    )
    assert result.returncode == 0, result.stderr
    triggers = [b for f in json.loads(result.stdout) for b in f["bindings"] if b["type"].endswith("Trigger")]
    routes = {(t.get("route"), tuple(t.get("methods", []))) for t in triggers if t["type"] == "httpTrigger"}
    assert routes == {
        ("webhooks/{source}/{token?}", ("POST",)),
        ("xapi/{source}/statements", ("POST",)),
        ("health", ("GET",)),
    }
    queue = next(t for t in triggers if t["type"] == "queueTrigger")
    assert (queue["queueName"], queue["connection"]) == ("learning-events", "BRIDGE_STORAGE")


def test_a_misconfigured_app_fails_at_start_up_naming_each_setting_but_no_secret() -> None:
    env = {**ENV, "BRIDGE_SOURCE_GENERIC_SECRET": "whsec_%%bad%%"}
    env.pop("BRIDGE_PROVIDER_REGISTRATION_ID")
    result = run_python("import function_app", env)
    assert result.returncode != 0
    assert "BRIDGE_PROVIDER_REGISTRATION_ID" in result.stderr
    assert "%%bad%%" not in result.stderr


def test_host_json_configures_the_queue() -> None:
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    assert {"batchSize", "maxDequeueCount", "visibilityTimeout", "messageEncoding"} <= set(queues)
