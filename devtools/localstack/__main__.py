"""`python -m devtools.localstack` (what `make run` runs): the whole bridge locally, until Ctrl-C.

Azurite on its default ports, the Graph sandbox on 7072 seeded with a demo provider, users and courses,
and the dev host serving the bridge on 7071 and driving its queue function. `--instances N` starts N dev
hosts draining the one queue, as Azure scales the app out: 7071, then 7073, 7074, ... (7072 stays the
sandbox's, where the settings point Graph).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from devtools.localstack.processes import (
    ROOT,
    AzuritePorts,
    Service,
    azurite,
    devhost,
    graph_sandbox,
    port_open,
)
from devtools.localstack.settings import LOCAL, ensure_local_settings

BRIDGE_PORT = 7071
SANDBOX_PORT = 7072
STATE = ROOT / ".local"


def bridge_ports(instances: int) -> list[int]:
    """7071 for the first dev host, then the ports after the sandbox's."""
    return [BRIDGE_PORT] + [SANDBOX_PORT + index for index in range(1, instances)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.localstack", description=__doc__)
    parser.add_argument("--instances", type=int, default=1, help="dev hosts draining the queue (default 1)")
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    ensure_local_settings()
    ports = AzuritePorts()
    hosts = bridge_ports(args.instances)
    busy = [p for p in (ports.blob, ports.queue, ports.table, SANDBOX_PORT, *hosts) if port_open(p)]
    if busy:
        print(f"make run: ports {busy} are in use (another `make run`?). Stop it first.", file=sys.stderr)
        return 1
    STATE.mkdir(exist_ok=True)
    services: list[Service] = []
    try:
        storage = azurite(ports, location=STATE / "azurite", log_path=STATE / "azurite.log").start()
        services.append(storage)
        storage.wait_ready(ports.queue)
        sandbox = graph_sandbox(
            SANDBOX_PORT, seed=ROOT / "devtools" / "localstack" / "demo-seed.json"
        ).start()
        services.append(sandbox)
        sandbox.wait_ready(f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/health")
        started = []
        for index, port in enumerate(hosts):
            host = devhost(port, {"DEVHOST_INSTANCE": f"instance-{index}"}, settings=LOCAL).start()
            services.append(host)
            started.append((host, port))
        for host, port in started:
            host.wait_ready(f"http://127.0.0.1:{port}/api/health")
        print(_WELCOME, flush=True)
        if len(hosts) > 1:
            others = ", ".join(f"http://127.0.0.1:{port}/api" for port in hosts[1:])
            print(f"  {len(hosts) - 1} more dev host(s) draining the same queue: {others}\n", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(s.process is not None and s.process.poll() is None for s in services):
            time.sleep(0.5)
        print("make run: a service stopped; shutting down.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    finally:
        for service in reversed(services):
            service.stop()


_WELCOME = f"""
The bridge is running locally.
  bridge         http://127.0.0.1:{BRIDGE_PORT}/api   (POST /webhooks/generic, GET /health)
  Graph sandbox  http://127.0.0.1:{SANDBOX_PORT}/v1.0  (seeded: demo provider, 2 users, 2 courses)
  Azurite        127.0.0.1:10000-10002 (data in .local/azurite)

Send a sample webhook, signed with the secret in local.settings.json, and wait until the course
activity is in the sandbox (it prints the record and the Graph URL it read it from):
  .venv/bin/python -m shared.cli send --source generic samples/generic/course-completed.json --wait 10

See what a body becomes without sending it:
  .venv/bin/python -m shared.cli translate --format generic samples/generic/progress-batch.json

Ctrl-C stops everything.
"""

if __name__ == "__main__":
    sys.exit(main())
