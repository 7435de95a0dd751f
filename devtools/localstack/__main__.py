"""`python -m devtools.localstack` (what `make run` runs): the whole bridge locally, until Ctrl-C.

Azurite on its default ports, the Graph sandbox on 7072 seeded with a demo provider, users and courses,
and the dev host serving the bridge on 7071 and driving its queue function.
"""

from __future__ import annotations

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


def main() -> int:
    ensure_local_settings()
    ports = AzuritePorts()
    busy = [p for p in (ports.blob, ports.queue, ports.table, BRIDGE_PORT, SANDBOX_PORT) if port_open(p)]
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
        host = devhost(BRIDGE_PORT, {}, settings=LOCAL).start()
        services.append(host)
        host.wait_ready(f"http://127.0.0.1:{BRIDGE_PORT}/api/health")
        print(_WELCOME, flush=True)
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
