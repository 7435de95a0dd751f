"""`python -m devtools.graph_sandbox [--port 7072] [--db FILE] [--seed FILE]`: run the Graph sandbox."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from aiohttp import web

from devtools.graph_sandbox.app import Seed, _seed_document, create_app
from devtools.graph_sandbox.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.graph_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback only (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7072)
    parser.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
    parser.add_argument("--seed", type=Path, help="JSON file for POST /_sandbox/seed at start-up")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="graph-sandbox %(levelname)s %(message)s")
    app = create_app(Store(args.db))
    if args.seed:
        seed = json.loads(args.seed.read_text(encoding="utf-8"))

        async def apply_seed(app: web.Application) -> None:
            _seed_document(app["sandbox"], Seed.model_validate(seed))

        app.on_startup.append(apply_seed)
    print(f"Graph sandbox on http://{args.host}:{args.port}/v1.0", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
