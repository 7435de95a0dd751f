"""The bench's stack: the project's LocalStack, with the bridge's table traffic through a counting proxy,
and beside it a second dev host serving the naive handler against the same sandbox (and, with a
baseline, a third serving an older commit of the bridge); plus the meters (CPU of each process from
/proc, Table round trips from the proxy, Graph calls from the sandbox)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

from devtools.localstack.processes import ROOT, AzuritePorts, Service, devhost, free_port
from devtools.localstack.stack import PROVIDER_ID, LocalStack

#: What the sandbox answers a successful course-activity write with: the bench counts these to know
#: when every event of a phase is in Graph.
_WRITES = {("POST", "activities"), ("PATCH", "activityById"), ("PATCH", "activityByExternalId")}
_TICK = os.sysconf("SC_CLK_TCK")
#: The baseline bridge's dev host, among BenchStack.services (and the CPU meters' names).
BASELINE_SERVICE = "baseline"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime: fields 14 and 15


@dataclass
class BenchStack(LocalStack):
    proxy_port: int = field(default_factory=free_port)
    naive_port: int = field(default_factory=free_port)
    #: An older commit's tree (devtools.bench.baseline.checkout) served by a third dev host, or None.
    baseline_tree: Path | None = None
    baseline_port: int = field(default_factory=free_port)
    #: One kept-alive client for the meters, which are read many times a second.
    _meters: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10), init=False, repr=False)
    _paused: set[str] = field(default_factory=set, init=False, repr=False)

    @property
    def settings_values(self) -> dict[str, str]:
        """The bridge's settings, its Table endpoint replaced by the counting proxy's."""
        values = super().settings_values
        counted = AzuritePorts(self.ports.blob, self.ports.queue, self.proxy_port).connection_string()
        return {**values, "AzureWebJobsStorage": counted, "BRIDGE_STORAGE": counted}

    @property
    def naive(self) -> str:
        return f"http://127.0.0.1:{self.naive_port}/api"

    def start_azurite(self) -> None:
        super().start_azurite()
        proxy = Service(
            "table-proxy",
            [
                sys.executable,
                "-m",
                "devtools.bench.proxy",
                "--port",
                str(self.proxy_port),
                "--target",
                str(self.ports.table),
            ],
            log_path=self.workdir / "proxy.log",
        ).start()
        self.services["proxy"] = proxy
        proxy.wait_ready(self.proxy_port)

    @property
    def baseline(self) -> str:
        return f"http://127.0.0.1:{self.baseline_port}/api"

    def start(self, *, devhost: bool = True) -> Self:
        """The project's stack, and the naive handler's dev host starting beside it; with a baseline,
        its dev host too, paused once ready (the working tree's bridge consumes the queue first)."""
        naive = self._naive_service().start()
        self.services["naive"] = naive
        super().start(devhost=devhost)
        if self.baseline_tree is not None:
            baseline = self._baseline_service(self.baseline_tree)
            baseline.name = "the baseline's devhost"
            baseline.start()
            self.services[BASELINE_SERVICE] = baseline
            baseline.wait_ready(f"{self.baseline}/health", timeout=120)
            self.pause(BASELINE_SERVICE)
        naive.wait_ready(f"{self.naive}/webhooks/generic", timeout=120)
        return self

    def _baseline_service(self, tree: Path) -> Service:
        """The baseline's `function_app`, served by the working tree's dev host code (copied over the
        baseline's, so only the bridge differs between the two) with the bridge's settings file (its
        table traffic through the same counting proxy). cwd and PYTHONPATH are the baseline tree, so
        `shared` and `function_app` are the baseline's."""
        target = tree / "devtools" / "devhost"
        target.mkdir(parents=True, exist_ok=True)
        for source in (ROOT / "devtools" / "devhost").glob("*.py"):
            shutil.copy(source, target / source.name)
        return devhost(
            self.baseline_port,
            {**self.devhost_env, "PYTHONPATH": str(tree)},
            settings=self.settings_file,
            app_dir=tree,
            log_path=self.workdir / "baseline.log",
            cwd=tree,
        )

    def pause(self, service: str) -> None:
        """SIGSTOP: a paused bridge neither polls the queue nor runs its timers."""
        os.kill(self.pid(service), signal.SIGSTOP)
        self._paused.add(service)

    def resume(self, service: str) -> None:
        os.kill(self.pid(service), signal.SIGCONT)
        self._paused.discard(service)

    def _naive_service(self) -> Service:
        """The naive handler as a function app of its own, served by the same dev host code and the
        same host.json as the bridge, with its own settings."""
        app_dir = self.workdir / "naive-app"
        app_dir.mkdir(exist_ok=True)
        shutil.copy(ROOT / "host.json", app_dir / "host.json")
        (app_dir / "function_app.py").write_text("from devtools.bench.naive import app  # noqa: F401\n")
        settings = self.workdir / "naive.settings.json"
        settings.write_text(json.dumps({"IsEncrypted": False, "Values": self.naive_settings}))
        return devhost(
            self.naive_port,
            self.devhost_env,
            settings=settings,
            app_dir=app_dir,
            log_path=self.workdir / "naive.log",
        )

    @property
    def naive_settings(self) -> dict[str, str]:
        return {
            "NAIVE_WEBHOOK_SECRET": self.secret,
            "NAIVE_GRAPH_BASE_URL": f"{self.sandbox}/v1.0",
            "NAIVE_PROVIDER_ID": PROVIDER_ID,
        }

    def pid(self, service: str) -> int:
        process = self.services[service].process
        assert process is not None
        return process.pid

    def stop(self) -> None:
        """Resumes a paused dev host first: a stopped process would not see its SIGINT."""
        self._meters.close()
        for name in list(self._paused):
            process = self.services[name].process
            if process is not None and process.poll() is None:
                self.resume(name)
        super().stop()

    def read(self) -> Reading:
        """Every meter at once, for the difference across a phase."""
        graph = self._graph_stats()
        tables = self._table_counts()
        names = ["devhost", "naive", "azurite", "proxy", "sandbox"]
        names += [BASELINE_SERVICE] if BASELINE_SERVICE in self.services else []
        cpu = {name: cpu_seconds(self.pid(name)) for name in names}
        return Reading(time.perf_counter(), cpu, tables, graph)

    def graph_writes(self) -> int:
        """Successful course-activity writes the sandbox has answered so far (any client)."""
        return writes_in(self._graph_stats())

    def table_calls(self) -> int:
        return sum(self._table_counts().values())

    def _graph_stats(self) -> Counter[str]:
        return Counter(self._meters.get(f"{self.sandbox}/_sandbox/stats").json()["requests"])

    def _table_counts(self) -> Counter[str]:
        return Counter(self._meters.get(f"http://127.0.0.1:{self.proxy_port}/_counts").json())


def writes_in(graph: Counter[str]) -> int:
    total = 0
    for key, count in graph.items():
        method, kind, status = key.split(" ")
        if (method, kind) in _WRITES and status.startswith("2"):
            total += count
    return total


@dataclass(frozen=True)
class Reading:
    at: float
    cpu: dict[str, float]
    tables: Counter[str]
    graph: Counter[str]

    def until(self, later: Reading) -> Usage:
        return Usage(
            later.at - self.at,
            {name: later.cpu[name] - self.cpu[name] for name in self.cpu},
            later.tables - self.tables,
            later.graph - self.graph,
        )


@dataclass(frozen=True)
class Usage:
    """What a phase cost, from the meters (never estimated)."""

    seconds: float
    cpu: dict[str, float]
    tables: Counter[str]
    graph: Counter[str]
