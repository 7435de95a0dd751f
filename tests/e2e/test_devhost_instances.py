"""`python -m devtools.devhost` as a process: several instances of one app on one stack, and an app whose
import fails (the host runs on with no functions). A small app of the test's own, so that the
bridge's own behaviour does not decide what the host is shown to do."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure.storage.queue import QueueClient

from devtools.localstack.processes import ROOT, free_port
from tests.e2e.stack import Stack, wait_for

APP = """
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
INSTANCE = os.environ.get("DEVHOST_INSTANCE", "?")


def _record(queue: str, text: str) -> None:
    from azure.storage.queue import QueueClient

    with QueueClient.from_connection_string(os.environ["AzureWebJobsStorage"], queue) as client:
        client.send_message(text)


@app.route(route="whoami", methods=["GET"])
def whoami(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(INSTANCE)


@app.queue_trigger(arg_name="message", queue_name="QUEUE", connection="AzureWebJobsStorage")
def drain(message: func.QueueMessage) -> None:
    _record("QUEUE-seen", INSTANCE)


@app.timer_trigger(arg_name="timer", schedule="* * * * * *", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    _record("QUEUE-ticks", INSTANCE)
"""

HOST_JSON = {
    "version": "2.0",
    "extensions": {"queues": {"batchSize": 1, "newBatchThreshold": 0, "maxPollingInterval": "00:00:00.2"}},
}


def _app(tmp_path: Path, stack: Stack, source: str) -> Path:
    (tmp_path / "function_app.py").write_text(source)
    (tmp_path / "host.json").write_text(json.dumps(HOST_JSON))
    values = {"AzureWebJobsStorage": stack.ports.connection_string(), "FUNCTIONS_WORKER_RUNTIME": "python"}
    (tmp_path / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return tmp_path


@pytest.fixture
def devhost(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(2)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def _start(app_dir: Path, port: int, *more: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AzureFunctionsWebHost__hostId": f"t-{uuid.uuid4().hex[:8]}",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.devhost", "--app-dir", str(app_dir), "--port", str(port), *more],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _messages(stack: Stack, queue: str) -> list[str]:
    with QueueClient.from_connection_string(stack.ports.connection_string(), queue) as client:
        try:
            return [m.content for m in client.peek_messages(max_messages=32)]
        except Exception:
            return []


def test_instances_share_the_queues_and_run_each_timer_once(
    stack: Stack, tmp_path: Path, devhost: list[subprocess.Popen[str]]
) -> None:
    queue = f"inst-{uuid.uuid4().hex[:10]}"
    app_dir = _app(tmp_path, stack, APP.replace("QUEUE", queue))
    for name in (queue, f"{queue}-seen", f"{queue}-ticks"):
        with QueueClient.from_connection_string(stack.ports.connection_string(), name) as client:
            client.create_queue()
    port = free_port()
    devhost.append(_start(app_dir, port, "--instances", "2"))
    answers = [_wait_answer(f"http://127.0.0.1:{p}/api/whoami") for p in (port, port + 1)]
    assert sorted(answers) == ["instance-0", "instance-1"]
    with QueueClient.from_connection_string(stack.ports.connection_string(), queue) as client:
        for n in range(12):
            client.send_message(base64.b64encode(f"m{n}".encode()).decode())
    try:
        seen = wait_for(lambda: _at_least(12, _messages(stack, f"{queue}-seen")), 60, "12 runs")
    except AssertionError:
        devhost[0].send_signal(2)
        _, err = devhost[0].communicate(timeout=20)
        raise AssertionError(err[-6000:]) from None
    time.sleep(2)
    ticks = _messages(stack, f"{queue}-ticks")
    assert set(seen) == {"instance-0", "instance-1"}  # both instances drained the queue
    assert len(ticks) >= 2
    assert len(set(ticks)) == 1  # one instance holds the timer's lock


def _at_least(count: int, messages: list[str]) -> list[str] | None:
    return messages if len(messages) >= count else None


def _wait_answer(url: str) -> str:
    return wait_for(lambda: _answer(url), 60, url)


def _answer(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def test_an_app_that_fails_to_import_leaves_the_host_running_with_no_functions(
    stack: Stack, tmp_path: Path, devhost: list[subprocess.Popen[str]]
) -> None:
    """GrpcWorkerChannel.ProcessFunctionMetadataResponses: "Worker failed to index functions", and the
    host runs on with zero functions: every route 404, the host's status Running; stderr says why."""
    app_dir = _app(tmp_path, stack, 'raise RuntimeError("BRIDGE_SOURCES is not valid JSON")\n')
    port = free_port()
    process = _start(app_dir, port)
    devhost.append(process)
    status = wait_for(lambda: _answer(f"http://127.0.0.1:{port}/admin/host/status"), 60, "the host's status")
    assert json.loads(status)["state"] == "Running"
    assert httpx.get(f"http://127.0.0.1:{port}/api/whoami", timeout=5).status_code == 404
    assert httpx.post(f"http://127.0.0.1:{port}/api/webhooks/generic", timeout=5).status_code == 404
    assert process.poll() is None
    process.send_signal(2)
    _, stderr = process.communicate(timeout=20)
    assert "Worker failed to index functions" in stderr
    assert "BRIDGE_SOURCES is not valid JSON" in stderr
