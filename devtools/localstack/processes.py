"""Starting and stopping the local stack's processes: Azurite, the Graph sandbox, the dev host.

Used by `make run` and by the end-to-end tests (on other ports), so both run the very same pieces.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account (public, documented; it protects nothing).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class AzuritePorts:
    blob: int = 10000
    queue: int = 10001
    table: int = 10002

    def connection_string(self) -> str:
        if self == AzuritePorts():
            return "UseDevelopmentStorage=true"
        base = f"http://127.0.0.1:{{}}/{DEV_ACCOUNT}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base.format(self.blob)};QueueEndpoint={base.format(self.queue)};"
            f"TableEndpoint={base.format(self.table)};"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports (dev hosts of one stack sit side by side)."""
    for _ in range(200):
        first = free_port()
        if first + count <= 65536 and all(_bindable(first + i) for i in range(1, count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports found")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Service:
    """A child process with a readiness check; stopped with SIGINT, then SIGKILL if it lingers."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        output = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=output, stderr=subprocess.STDOUT if output else None
        )
        return self

    def wait_ready(self, check: str | int, timeout: float = 60.0) -> None:
        """Wait until a URL answers below 500 or a port accepts; fail fast if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}{self._log_tail()}")
            if _ready(check):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f} s{self._log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
        return "\n" + "\n".join(tail)


def _ready(check: str | int) -> bool:
    if isinstance(check, int):
        return port_open(check)
    try:
        return httpx.get(check, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False


def azurite(ports: AzuritePorts, *, location: Path | None, log_path: Path | None = None) -> Service:
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"Azurite is not installed: run `npm ci` in {ROOT} (make does it for you).")
    argv = [
        str(AZURITE_BIN),
        "--silent",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
        "--blobHost",
        "127.0.0.1",
        "--queueHost",
        "127.0.0.1",
        "--tableHost",
        "127.0.0.1",
        "--blobPort",
        str(ports.blob),
        "--queuePort",
        str(ports.queue),
        "--tablePort",
        str(ports.table),
    ]
    if location is None:
        argv.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        argv += ["--location", str(location)]
    if shutil.which("node") is None:
        raise RuntimeError("Node.js is needed for Azurite; install Node.js 20 or newer.")
    return Service("azurite", argv, log_path=log_path)


def graph_sandbox(port: int, *, seed: Path | None = None, log_path: Path | None = None) -> Service:
    argv = [sys.executable, "-m", "devtools.graph_sandbox", "--port", str(port)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    return Service("graph-sandbox", argv, log_path=log_path)


def devhost(
    port: int,
    env: Mapping[str, str],
    *,
    settings: Path | None = None,
    app_dir: Path | None = None,
    log_path: Path | None = None,
    cwd: Path = ROOT,
) -> Service:
    """The dev host; `cwd` another tree than this one to serve that tree's code (the bench's baseline)."""
    argv = [sys.executable, "-m", "devtools.devhost", "--port", str(port)]
    if settings is not None:
        argv += ["--settings", str(settings)]
    if app_dir is not None:  # another function app than this project's (the bench's naive handler)
        argv += ["--app-dir", str(app_dir)]
    return Service("devhost", argv, env=env, log_path=log_path, cwd=cwd)
