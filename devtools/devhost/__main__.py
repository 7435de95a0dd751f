"""`python -m devtools.devhost`: serve function_app's HTTP functions and drive its queue and timer
functions, as the Functions host would; `--instances N` runs N instances of the app (ports P..P+N-1)
on the same storage, as a scaled-out app runs.

Settings come from the environment, then from local.settings.json (as `func start` reads them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from devtools.devhost.host import (
    FunctionSpec,
    HttpOptions,
    QueueListener,
    QueueOptions,
    Throttle,
    TimerRunner,
    default_host_id,
    function_timeout,
    http_app,
    http_routes,
    load_functions,
    read_host_json,
    singleton_options,
)
from devtools.devhost.httptrigger import HostState
from devtools.devhost.storage import ConnectionMissing, blob_service, read_connection
from devtools.devhost.timers import TimerStore
from devtools.devhost.worker import Worker
from shared.config.settings import read_local_settings

log = logging.getLogger("devhost")


def index_functions() -> list[FunctionSpec]:
    """Import function_app and read its functions. An exception there does not stop the real host: the
    Python worker answers the host's metadata request with the failure (Azure/azure-functions-python-
    worker azure_functions_worker/dispatcher.py, `_handle__functions_metadata_request`), the host logs
    "Worker failed to index functions" (Azure/azure-functions-host src/WebJobs.Script.Grpc/Channel/
    GrpcWorkerChannel.cs, `ProcessFunctionMetadataResponses`) and runs on with zero functions: every
    route 404, no queue polled, no timer. The dev host does the same, and says so on stderr too."""
    try:
        module = importlib.import_module("function_app")
        return load_functions(module.app)
    except Exception as exc:
        log.error("Worker failed to index functions", exc_info=exc)
        log.warning("0 functions found (Worker)")
        log.warning("No job functions found.")
        reason = "".join(traceback.format_exception_only(exc)).strip()
        print(
            "devhost: the app's functions could not be indexed (the host runs on with none: every route "
            f"answers 404, no queue or timer runs).\n{reason}",
            file=sys.stderr,
            flush=True,
        )
        return []


def _listeners(
    specs: list[FunctionSpec], host_json: dict[str, Any], worker: Worker, app_dir: Path
) -> list[QueueListener | TimerRunner]:
    options = QueueOptions.from_host_json(host_json)
    listeners: list[QueueListener | TimerRunner] = []
    for spec in specs:
        if spec.trigger["type"] != "queueTrigger":
            continue
        try:
            connection = read_connection(spec.trigger.get("connection") or "")
        except ConnectionMissing as exc:  # the host puts the function in error; the others run
            log.error("The '%s' function is in error: %s", spec.name, exc)
            continue
        listeners.append(QueueListener(spec, connection, options, worker))
    timers = [spec for spec in specs if spec.trigger["type"] == "timerTrigger"]
    if timers:
        store = _timer_store(app_dir)
        singleton = singleton_options(host_json)
        listeners += [TimerRunner(spec, worker, store=store, singleton=singleton) for spec in timers]
    return listeners


def _timer_store(app_dir: Path) -> TimerStore | None:
    try:
        connection = read_connection("")
    except ConnectionMissing as exc:
        log.warning("timers run without locks or schedule monitor: %s", exc)
        return None
    return TimerStore(blob_service(connection), default_host_id(app_dir))


async def serve(app_dir: Path, host: str, port: int) -> None:
    host_json = read_host_json(app_dir / "host.json")
    worker = Worker(function_timeout(host_json))
    specs = index_functions()
    route_prefix = host_json.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    throttle = Throttle(HttpOptions.from_host_json(host_json))
    state = HostState(
        default_host_id(app_dir), os.environ.get("DEVHOST_INSTANCE", uuid.uuid4().hex), time.monotonic()
    )
    runner = web.AppRunner(
        http_app(http_routes(specs, route_prefix), worker, throttle, state), access_log=None
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    listeners = _listeners(specs, host_json, worker, app_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"devhost: functions on http://{host}:{port}/{route_prefix}", flush=True)
    try:
        await asyncio.gather(*(listener.run(stop) for listener in listeners), stop.wait())
    finally:
        for listener in listeners:
            if isinstance(listener, QueueListener):
                await listener.close()
        stores = {id(t.store): t.store for t in listeners if isinstance(t, TimerRunner) and t.store}
        for store in stores.values():
            await store.blobs.close()
        await runner.cleanup()


def run_instances(count: int, argv: list[str], port: int) -> int:
    """N dev host processes, one per port from `port` on, each a whole instance (its own worker), all
    on the same settings and storage: they drain the same queues and share the timers' locks. Stops
    them all (SIGINT) when told to stop or when one exits."""
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for index in range(count):
        env = {**os.environ, "DEVHOST_INSTANCE": f"instance-{index}"}
        args = [*argv, "--port", str(port + index), "--instances", "1"]
        children.append(subprocess.Popen([sys.executable, "-m", "devtools.devhost", *args], env=env))
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0 if stopping else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.devhost", description=__doc__)
    parser.add_argument("--app-dir", type=Path, default=Path.cwd())
    parser.add_argument("--settings", type=Path, help="default: APP_DIR/local.settings.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument(
        "--instances", type=int, default=1, help="instances of the app, on ports PORT..PORT+N-1 (default 1)"
    )
    args = parser.parse_args()
    if args.instances < 1:
        parser.error("--instances must be 1 or more")
    if args.instances > 1:
        passed = ["--app-dir", str(args.app_dir), "--host", args.host]
        passed += ["--settings", str(args.settings)] if args.settings else []
        raise SystemExit(run_instances(args.instances, passed, args.port))
    app_dir = args.app_dir.resolve()
    for key, value in read_local_settings(args.settings or app_dir / "local.settings.json").items():
        os.environ.setdefault(key, value)
    sys.path.insert(0, str(app_dir))
    instance = os.environ.get("DEVHOST_INSTANCE")
    logging.basicConfig(
        level=os.environ.get("DEVHOST_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)-7s %(name)s"
        + (f" [{instance}]" if instance else "")
        + ": %(message)s",
    )
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(app_dir, args.host, args.port))


if __name__ == "__main__":
    main()
