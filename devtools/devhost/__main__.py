"""`python -m devtools.devhost`: serve function_app's HTTP functions and drive its queue functions.

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
import sys
from pathlib import Path

from aiohttp import web

from devtools.devhost.host import (
    HttpOptions,
    QueueListener,
    QueueOptions,
    Throttle,
    TimerRunner,
    http_routes,
    load_functions,
    read_host_json,
)
from shared.config.exceptions import ConfigurationError
from shared.config.settings import read_local_settings


async def serve(app_dir: Path, host: str, port: int) -> None:
    host_json = read_host_json(app_dir / "host.json")
    try:
        module = importlib.import_module("function_app")
    except ConfigurationError as exc:
        print(f"devhost: the app did not start.\n{exc}", file=sys.stderr)
        raise SystemExit(1) from None
    specs = load_functions(module.app)
    route_prefix = host_json.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    throttle = Throttle(HttpOptions.from_host_json(host_json))
    runner = web.AppRunner(http_routes(specs, route_prefix, throttle), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    options = QueueOptions.from_host_json(host_json)
    listeners: list[QueueListener | TimerRunner] = [
        QueueListener(spec, os.environ[spec.trigger.get("connection") or "AzureWebJobsStorage"], options)
        for spec in specs
        if spec.trigger["type"] == "queueTrigger"
    ]
    listeners += [TimerRunner(spec) for spec in specs if spec.trigger["type"] == "timerTrigger"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"devhost: functions on http://{host}:{port}/{route_prefix}", flush=True)
    try:
        await asyncio.gather(
            *(listener.run(stop) for listener in listeners), throttle.watch_lag(stop), stop.wait()
        )
    finally:
        for listener in listeners:
            if isinstance(listener, QueueListener):
                await listener.close()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.devhost", description=__doc__)
    parser.add_argument("--app-dir", type=Path, default=Path.cwd())
    parser.add_argument("--settings", type=Path, help="default: APP_DIR/local.settings.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    args = parser.parse_args()
    app_dir = args.app_dir.resolve()
    for key, value in read_local_settings(args.settings or app_dir / "local.settings.json").items():
        os.environ.setdefault(key, value)
    sys.path.insert(0, str(app_dir))
    logging.basicConfig(
        level=os.environ.get("DEVHOST_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(app_dir, args.host, args.port))


if __name__ == "__main__":
    main()
