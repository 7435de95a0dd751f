"""The Functions entry point: what the host indexes, cold-start cost, start-up validation."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from shared.sources.formats.generic import signed_headers
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


#: What only the queue side and the operators' work need: no webhook, first or not, imports them.
QUEUE_SIDE = (
    "msgraph",
    "msgraph_core",
    "kiota_*",
    "azure.identity",
    "azure.data.tables",
    "azure.monitor",  # the OpenTelemetry exporters
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "jwt",  # Canvas, not configured here
    "cryptography",
    "shared.delivery",
    "shared.state",
    "shared.graph",
    "shared.operations",
)
#: What the webhook needs, imported by its first request rather than with the app: the Functions host
#: imports the app before anything else (indexing), and a cold start pays for every module it loads.
WEBHOOK_SIDE = (
    "pydantic",
    "pydantic_core",
    "opentelemetry",
    "standardwebhooks",
    "azure.storage.queue",
    "azure.core",
    "shared.runtime",
    "shared.ingest",
    "shared.sources",
    "shared.events.model",
    "shared.telemetry",
)
#: A module matches a package name when it is that package or inside it; `name*` matches by prefix.
LOADED = """
def loaded(names):
    def match(module, name):
        if name.endswith("*"):
            return module.startswith(name[:-1])
        return module == name or module.startswith(name + ".")
    return sorted(m for m in sys.modules if any(match(m, name) for name in names))
"""


def test_importing_the_app_imports_neither_the_queue_side_nor_what_the_webhook_needs() -> None:
    result = run_python(
        f"import sys, json\n{LOADED}\nimport function_app\n"
        f"print(json.dumps(loaded({QUEUE_SIDE + WEBHOOK_SIDE!r})))",
        ENV,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_first_webhook_imports_nothing_of_the_queue_side() -> None:
    body = json.dumps(
        {
            "eventId": "cold-1",
            "occurredAt": "2026-01-05T10:00:00Z",
            "learner": {"email": "ada@contoso.example"},
            "course": {"externalId": "course-101"},
            "status": "inProgress",
        }
    ).encode()
    headers = {
        **signed_headers(body, TEST_SECRET, "msg_cold1", datetime.now(UTC)),
        "content-type": "application/json",
    }
    code = f"""
import sys, json
{LOADED}
import azure.functions as func
import function_app
from shared.functions.bridge import LazyBridge

sent = []
class Queue:
    def send_all(self, queue, messages):
        sent.extend(messages)
    def send_later(self, queue, message, delay_seconds):
        sent.append(message)

function_app.bridge = LazyBridge(function_app.bridge.settings, queues=Queue())
request = func.HttpRequest(
    "POST", "http://127.0.0.1/api/webhooks/generic", headers={headers!r},
    route_params={{"source": "generic"}}, body={body!r},
)
status = function_app.webhook(request).status_code
print(json.dumps({{"status": status, "queued": len(sent), "loaded": loaded({QUEUE_SIDE!r})}}))
"""
    result = run_python(code, ENV)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": 202, "queued": 1, "loaded": []}


def test_the_app_declares_the_routes_and_queue_the_host_needs() -> None:
    result = run_python(
        "import json, function_app\n"
        "functions = function_app.app.get_functions()\n"
        "print(json.dumps([{'name': f.get_function_name(), **json.loads(f.get_function_json())} "
        "for f in functions]))",
        ENV,
    )
    assert result.returncode == 0, result.stderr
    functions = json.loads(result.stdout)
    triggers = [b for f in functions for b in f["bindings"] if b["type"].endswith("Trigger")]
    routes = {(t.get("route"), tuple(t.get("methods", []))) for t in triggers if t["type"] == "httpTrigger"}
    assert routes == {
        ("webhooks/{source}/{token?}", ("POST",)),
        ("xapi/{source}/statements", ("POST",)),
        ("health", ("GET",)),
    }
    queues = [(t["queueName"], t["connection"]) for t in triggers if t["type"] == "queueTrigger"]
    assert queues == [("learning-events", "BRIDGE_STORAGE")]
    timers = {f["name"] for f in functions if f["bindings"][0]["type"] == "timerTrigger"}
    assert timers == {"retry_parked", "drain_poison", "reconcile_report", "retention"}


def test_no_function_triggers_on_a_poison_queue() -> None:
    """A `-poison` queue has no poison queue: the host neither releases nor moves a message whose
    function failed there, and skips the function once the message is past maxDequeueCount (the
    message then cycles unseen until it expires). The poison queue is drained by a timer instead."""
    result = run_python(
        "import json, function_app\n"
        "functions = function_app.app.get_functions()\n"
        "print(json.dumps([json.loads(f.get_function_json()) for f in functions]))",
        ENV,
    )
    assert result.returncode == 0, result.stderr
    queues = [b["queueName"] for f in json.loads(result.stdout) for b in f["bindings"] if "queueName" in b]
    assert not [name for name in queues if name.endswith("-poison")]


def test_a_misconfigured_app_still_starts_and_every_function_names_the_settings_but_no_value() -> None:
    """An exception at import leaves the real host running with zero functions (every route 404s, the
    queue and timers idle, the deployment "succeeded"): the app imports, and each function says why."""
    env = {**ENV, "BRIDGE_SOURCE_GENERIC_SECRET": "whsec_%%bad%%", "BRIDGE_MAX_BODY_BYTES": "lots%%"}
    env.pop("BRIDGE_PROVIDER_REGISTRATION_ID")
    code = """
import asyncio, json, logging
import azure.functions as func
logging.basicConfig(level=logging.INFO, format="LOG %(levelname)s %(message)s")
import function_app
from shared.config.exceptions import AppNotConfigured

functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
request = func.HttpRequest(
    "POST", "http://h/api/webhooks/generic", headers={}, route_params={"source": "generic"}, body=b"{}"
)
webhook = function_app.webhook(request)
health = function_app.health(func.HttpRequest("GET", "http://h/api/health", headers={}, body=b""))
message = func.QueueMessage(body=b"{}")
try:
    asyncio.run(function_app.apply_event(message))
    queue = "returned"
except AppNotConfigured as exc:
    queue = str(exc)
timer_names = ("drain_poison", "retry_parked", "reconcile_report", "retention")
timers = {name: asyncio.run(functions[name](None)) for name in timer_names}
print(json.dumps({
    "functions": sorted(functions),
    "webhook": [webhook.status_code, webhook.mimetype, dict(webhook.headers), json.loads(webhook.get_body())],
    "health": [health.status_code, json.loads(health.get_body())],
    "queue": queue,
    "timers": timers,
}))
"""
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert len(out["functions"]) == 8
    settings = ["BRIDGE_MAX_BODY_BYTES", "BRIDGE_PROVIDER_REGISTRATION_ID"]
    status, media_type, headers, problem = out["webhook"]
    assert (status, media_type, headers.get("Retry-After")) == (503, "application/problem+json", "300")
    assert problem["type"].endswith(":app-not-configured")
    assert problem["settings"] == settings
    assert all(name in problem["detail"] for name in settings)
    status, report = out["health"]
    assert (status, report["status"], report["settings"]) == (503, "unhealthy", settings)
    assert "BRIDGE_PROVIDER_REGISTRATION_ID is required" in " ".join(report["problems"])
    assert "BRIDGE_PROVIDER_REGISTRATION_ID" in out["queue"]  # the host retries, then the poison queue
    assert out["timers"] == dict.fromkeys(("drain_poison", "retry_parked", "reconcile_report", "retention"))
    timer_logs = [line for line in result.stderr.splitlines() if "timer" in line and "skipped" in line]
    assert len(timer_logs) == 4
    assert all(line.startswith("LOG ERROR bridge not configured") for line in timer_logs)
    assert "%%bad%%" not in result.stdout + result.stderr
    assert "lots%%" not in result.stdout + result.stderr


def test_host_json_configures_the_queue() -> None:
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    assert {"batchSize", "maxDequeueCount", "visibilityTimeout", "messageEncoding"} <= set(queues)


def test_queue_and_timer_functions_return_none_whatever_their_job_returns() -> None:
    """The Python worker fails a function without a `$return` binding that returns anything but None
    (azure-functions-python-worker dispatcher: "without a $return binding returned a non-None value"):
    every queue and timer function registered returns None even when the work it calls returns a
    value (the reconcile and retention return their counts)."""
    code = """
import asyncio, inspect, json
import azure.functions as func
import function_app
from shared.functions import maintenance, queue

async def counts(*args):
    return {"counted": 1}

for module, name in [(queue, "apply_event"), (queue, "drain_poison"), (queue, "retry_parked"),
                     (maintenance, "reconcile_report"), (maintenance, "retention")]:
    setattr(module, name, counts)

class Configured:
    problem = None
    def get(self):
        return object()

function_app.bridge = Configured()
results = {}
for fn in function_app.app.get_functions():
    bindings = json.loads(fn.get_function_json())["bindings"]
    trigger = bindings[0]["type"]
    if trigger == "httpTrigger":
        continue
    user = fn.get_user_function()
    argument = func.QueueMessage(body=b"{}") if trigger == "queueTrigger" else None
    results[fn.get_function_name()] = {
        "returned": asyncio.run(user(argument)),
        "annotation": str(inspect.signature(user).return_annotation),
        "return_binding": any(b["name"] == "$return" for b in bindings),
    }
print(json.dumps(results))
"""
    result = run_python(code, ENV)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    assert set(results) == {"apply_event", "drain_poison", "retry_parked", "reconcile_report", "retention"}
    for name, outcome in results.items():
        assert outcome == {"returned": None, "annotation": "None", "return_binding": False}, name
