"""`python -m devtools.coldstart [--runs N] [--baseline DIR]`: what a cold start costs, on this machine.

Each figure is a median over N fresh interpreters, the runs of every kind taken in turn so that the
load of a shared machine falls on all of them alike:

- importing `azure.functions` alone (the Functions worker has it loaded before it imports the app);
- importing `function_app` (azure.functions included), and its ratio to the line above;
- the first webhook request after that import, in the same process: `function_app.webhook` called as
  the worker calls it, with a signed event for the `generic` source, queued to an Azurite started for
  the run (in memory; skipped, and said so, when Azurite is not installed); then a second request;
  and the import and first webhook together (what a cold HTTP request pays once the worker is up).

Times are taken inside the interpreter (what `python -X importtime` adds up), by the wall clock and in
CPU time (the measured process's own: steadier when other work shares the machine); the whole process
(`python -c "import …"`, interpreter start-up included) is shown beside them. The settings are the dev
host's: local.settings.sample.json with a fresh secret, storage pointed at the run's Azurite.

`--baseline DIR` measures another checkout of the app in the same run, with the same interpreter (for
an earlier commit: `git worktree add /tmp/before <commit>`, then `git worktree remove /tmp/before`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from devtools.localstack.processes import AZURITE_BIN, ROOT, AzuritePorts, azurite, free_port
from devtools.localstack.settings import SAMPLE, new_webhook_secret
from shared.config.settings import secret_setting_name
from shared.events.names import EVENTS_QUEUE
from shared.sources.formats.generic import signed_headers

#: Only `time` is imported before the clocks start: anything else would be paid for outside them.
_IMPORT = """
import time
wall, cpu = time.perf_counter(), time.process_time()
import {module}
print(time.perf_counter() - wall, time.process_time() - cpu)
"""
_REQUESTS = """
import time
wall, cpu = time.perf_counter(), time.process_time()
import function_app
imported = [time.perf_counter() - wall, time.process_time() - cpu]
import json, os
import azure.functions as func
answers = []
for request in json.loads(os.environ["COLDSTART_REQUESTS"]):
    req = func.HttpRequest(
        "POST", "http://127.0.0.1/api/webhooks/generic", headers=request["headers"],
        route_params={"source": "generic"}, body=request["body"].encode(),
    )
    wall, cpu = time.perf_counter(), time.process_time()
    response = function_app.webhook(req)
    elapsed = [time.perf_counter() - wall, time.process_time() - cpu]
    answers.append([*elapsed, response.status_code, response.get_body().decode()])
print(json.dumps({"import": imported, "requests": answers}))
"""


@dataclass
class Figures:
    """One app (or azure.functions alone): seconds, one value per fresh interpreter."""

    label: str
    imports: list[float] = field(default_factory=list)
    #: CPU time of the same imports: steadier than the wall clock on a machine shared with other work.
    import_cpu: list[float] = field(default_factory=list)
    #: The whole `python -c "import …"` process, interpreter start-up included.
    processes: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    first_cpu: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    #: Import and first webhook in one process: what a cold HTTP request pays after the worker starts.
    cold_http: list[float] = field(default_factory=list)
    cold_http_cpu: list[float] = field(default_factory=list)


def dev_settings(storage: str | None) -> dict[str, str]:
    """The sample settings, as `make run` makes them (a fresh secret), storage replaced when given."""
    values: dict[str, str] = json.loads(SAMPLE.read_text(encoding="utf-8"))["Values"]
    for name in json.loads(values["BRIDGE_SOURCES"]):
        values[secret_setting_name(name)] = values.get(secret_setting_name(name)) or new_webhook_secret()
    if storage is not None:
        values.update(AzureWebJobsStorage=storage, BRIDGE_STORAGE=storage)
    return values


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This environment without any BRIDGE_ setting of the caller's, plus `settings`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    return {**clean, **settings}


def run_python(code: str, root: Path, env: Mapping[str, str]) -> tuple[str, float]:
    """(stdout, wall seconds) of a fresh interpreter running `code` in `root`."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=dict(env), capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"the measured interpreter failed in {root}:\n{result.stderr[-2000:]}")
    return result.stdout.strip(), wall


def measure_import(figures: Figures, module: str, root: Path, env: Mapping[str, str]) -> None:
    out, process = run_python(_IMPORT.format(module=module), root, env)
    wall, cpu = (float(value) for value in out.split())
    figures.imports.append(wall)
    figures.import_cpu.append(cpu)
    figures.processes.append(process)


def signed_requests(secret: str, count: int = 2) -> str:
    """`count` webhook deliveries of one event each, signed now (the signature is valid 5 minutes)."""
    requests = []
    for _ in range(count):
        event = {
            "eventId": f"coldstart-{uuid.uuid4()}",
            "occurredAt": datetime.now(UTC).isoformat(),
            "learner": {"email": "ada.lovelace@contoso.example"},
            "course": {"externalId": "course-101"},
            "status": "inProgress",
            "completionPercentage": 50,
        }
        body = json.dumps(event).encode()
        headers = signed_headers(body, secret, f"msg_{uuid.uuid4().hex}", datetime.now(UTC))
        requests.append({"headers": {**headers, "content-type": "application/json"}, "body": body.decode()})
    return json.dumps(requests)


def measure_requests(figures: Figures, root: Path, env: Mapping[str, str], secret: str) -> None:
    out, _ = run_python(_REQUESTS, root, {**env, "COLDSTART_REQUESTS": signed_requests(secret)})
    result = json.loads(out)
    for _, _, status, body in result["requests"]:
        if status != 202:
            raise RuntimeError(f"{figures.label}: the webhook answered {status}, not 202: {body[:500]}")
    (first, first_cpu, _, _), (second, _, _, _) = result["requests"]
    import_wall, import_cpu = result["import"]
    figures.first.append(first)
    figures.first_cpu.append(first_cpu)
    figures.second.append(second)
    figures.cold_http.append(import_wall + first)
    figures.cold_http_cpu.append(import_cpu + first_cpu)


@contextmanager
def local_storage(workdir: Path) -> Iterator[str]:
    """An in-memory Azurite with the events queue created (queue creation is a one-off, not a cold
    start's cost); yields its connection string."""
    from azure.storage.queue import QueueClient

    ports = AzuritePorts(free_port(), free_port(), free_port())
    service = azurite(ports, location=None, log_path=workdir / "azurite.log").start()
    try:
        service.wait_ready(ports.queue)
        with QueueClient.from_connection_string(ports.connection_string(), EVENTS_QUEUE) as client:
            client.create_queue()
        yield ports.connection_string()
    finally:
        service.stop()


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms" if values else "-"


def _row(name: str, cells: list[str]) -> str:
    return f"{name:<34}" + "".join(f"{cell:>27}" for cell in cells)


def report(alone: Figures, apps: list[Figures], runs: int, requests_skipped: str | None) -> None:
    def ratio(app: Figures, of: str) -> str:
        values, base = getattr(app, of), getattr(alone, of)
        return f"{_ms(values)} ({statistics.median(values) / statistics.median(base):.2f}x)"

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"cold start: medians of {runs} fresh interpreters each "
        f"(Python {platform.python_version()}, {os.cpu_count()} cores, load average {load})"
    )
    print(_row("", [alone.label] + [app.label for app in apps]))
    print(_row("import, wall clock", [_ms(alone.imports)] + [ratio(app, "imports") for app in apps]))
    print(_row("import, CPU time", [_ms(alone.import_cpu)] + [ratio(app, "import_cpu") for app in apps]))
    print(_row('python -c "import …", whole', [_ms(alone.processes)] + [_ms(app.processes) for app in apps]))
    if requests_skipped:
        print(f"webhook requests not measured: {requests_skipped}")
        return
    rows = [
        ("first webhook, wall clock", "first"),
        ("first webhook, CPU time", "first_cpu"),
        ("second webhook, wall clock", "second"),
        ("import + first webhook, wall clock", "cold_http"),
        ("import + first webhook, CPU time", "cold_http_cpu"),
    ]
    for name, attribute in rows:
        print(_row(name, ["-"] + [_ms(getattr(app, attribute)) for app in apps]))


def measure_round(
    alone: Figures, apps: list[tuple[Figures, Path]], env: Mapping[str, str], secret: str | None
) -> None:
    """One run of each kind; `secret` None skips the webhook requests."""
    measure_import(alone, "azure.functions", ROOT, env)
    for figures, root in apps:
        measure_import(figures, "function_app", root, env)
        if secret is not None:
            measure_requests(figures, root, env, secret)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.coldstart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per figure (at least 7)")
    parser.add_argument("--baseline", type=Path, help="another checkout of the app to measure alongside")
    parser.add_argument("--no-storage", action="store_true", help="skip the webhook requests (no Azurite)")
    args = parser.parse_args()
    if args.runs < 7:
        parser.error("--runs: at least 7 (a median of fewer is noise on a shared machine)")
    if args.baseline is not None and not (args.baseline / "function_app.py").exists():
        parser.error(f"--baseline: no function_app.py in {args.baseline}")
    skipped = "--no-storage was given" if args.no_storage else None
    if skipped is None and not AZURITE_BIN.exists():
        skipped = "Azurite is not installed (npm ci), and the webhook does not answer 202 without storage"
    roots = [("function_app (this tree)", ROOT)]
    if args.baseline is not None:
        roots.append(("function_app (baseline)", args.baseline.resolve()))
        print(f"baseline: {args.baseline.resolve()}", flush=True)
    alone = Figures("azure.functions alone")
    apps = [(Figures(label), root) for label, root in roots]
    with tempfile.TemporaryDirectory() as workdir, _storage(Path(workdir), skipped) as storage:
        settings = dev_settings(storage)
        env = child_env(settings)
        secret = None if skipped else settings[secret_setting_name("generic")]
        # A first, unrecorded round warms the disk cache and writes the .pyc files.
        measure_round(Figures("warm-up"), [(Figures(label), root) for label, root in roots], env, secret)
        for _ in range(args.runs):
            measure_round(alone, apps, env, secret)
    report(alone, [figures for figures, _ in apps], args.runs, skipped)
    return 0


@contextmanager
def _storage(workdir: Path, skipped: str | None) -> Iterator[str | None]:
    if skipped is not None:
        yield None
        return
    with local_storage(workdir) as connection:
        yield connection


if __name__ == "__main__":
    sys.exit(main())
