"""The real local stack on free ports, for end-to-end tests and benchmarks: Azurite (in memory), the
seeded Graph sandbox and the dev host, started by the same code as `make run`, plus the probes that
tests need (records in the sandbox, its request log, queue contents).

`instances` dev hosts (one by default) serve the bridge on consecutive ports and drain the one queue
together, as Azure's instances of one app do: one instance hides the races between them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from devtools.localstack.processes import (
    AzuritePorts,
    Service,
    azurite,
    devhost,
    free_port,
    free_ports,
    graph_sandbox,
)
from shared.config.settings import secret_setting_name
from shared.sources.formats.generic import signed_headers
from shared.state.models import DeadLetterRecord, DeliveryRecord
from shared.state.store import TableStateStore

PROVIDER_ID = "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90"
DEMO_SEED = Path(__file__).resolve().parent / "demo-seed.json"
T = TypeVar("T")


@dataclass
class LocalStack:
    workdir: Path
    secret: str
    seed: Path = DEMO_SEED
    #: More sources beside `generic`: name -> (definition, secret or None).
    more_sources: dict[str, tuple[dict[str, Any], str | None]] = field(default_factory=dict)
    #: More app settings (e.g. a short BRIDGE_CLAIM_LEASE_SECONDS for tests).
    more_settings: dict[str, str] = field(default_factory=dict)
    #: Azurite's data folder; None keeps it in memory (gone when Azurite stops).
    azurite_location: Path | None = None
    #: Extra environment for the dev host (log level, message lease).
    devhost_env: dict[str, str] = field(default_factory=lambda: {"DEVHOST_LOG_LEVEL": "INFO"})
    ports: AzuritePorts = field(default_factory=lambda: AzuritePorts(free_port(), free_port(), free_port()))
    sandbox_port: int = field(default_factory=free_port)
    #: How many dev hosts serve the bridge, on consecutive ports from `bridge_port`.
    instances: int = 1
    #: The first dev host's port; 0 picks free ones.
    bridge_port: int = 0
    services: dict[str, Service] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.instances < 1:
            raise ValueError("a stack has at least one dev host")
        if not self.bridge_port:
            self.bridge_port = free_ports(self.instances)

    @property
    def settings_values(self) -> dict[str, str]:
        storage = self.ports.connection_string()
        return {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": storage,
            "BRIDGE_STORAGE": storage,
            "BRIDGE_SOURCES": json.dumps(
                {"generic": {"format": "generic"}, **{k: d for k, (d, _) in self.more_sources.items()}}
            ),
            "BRIDGE_SOURCE_GENERIC_SECRET": self.secret,
            **{secret_setting_name(k): s for k, (_, s) in self.more_sources.items() if s is not None},
            "BRIDGE_PROVIDER_REGISTRATION_ID": PROVIDER_ID,
            "BRIDGE_GRAPH_BASE_URL": f"{self.sandbox}/v1.0",
            "BRIDGE_GRAPH_AUTH": "anonymous",
            **self.more_settings,
        }

    @property
    def settings_file(self) -> Path:
        return self.workdir / "local.settings.json"

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def bridge(self) -> str:
        """The first dev host's base URL."""
        return self.bridges[0]

    @property
    def bridge_ports(self) -> list[int]:
        return [self.bridge_port + index for index in range(self.instances)]

    @property
    def bridges(self) -> list[str]:
        """Every dev host's base URL, in instance order."""
        return [f"http://127.0.0.1:{port}/api" for port in self.bridge_ports]

    @staticmethod
    def devhost_name(instance: int) -> str:
        """The instance's key in `services` (and its log's name): `devhost`, `devhost-1`, ..."""
        return "devhost" if instance == 0 else f"devhost-{instance}"

    @property
    def activities_url(self) -> str:
        provider = f"{self.sandbox}/v1.0/employeeExperience/learningProviders/{PROVIDER_ID}"
        return f"{provider}/learningCourseActivities"

    def start(self, *, devhost: bool = True) -> Self:
        """Azurite, the sandbox and (unless `devhost` is false: a caller that runs the app itself) the
        dev host serving the bridge."""
        self.settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": self.settings_values}))
        self.start_azurite()
        sandbox = graph_sandbox(
            self.sandbox_port, seed=self.seed, log_path=self.workdir / "sandbox.log"
        ).start()
        self.services["sandbox"] = sandbox
        sandbox.wait_ready(f"{self.sandbox}/_sandbox/health")
        if devhost:
            self.start_devhost()
        return self

    def start_azurite(self) -> None:
        service = azurite(
            self.ports, location=self.azurite_location, log_path=self.workdir / "azurite.log"
        ).start()
        self.services["azurite"] = service
        service.wait_ready(self.ports.queue)

    def start_devhost(self, instance: int | None = None) -> None:
        """Start one dev host instance, or (None) every one: all started first, then each waited for,
        so that they pay their start-up side by side."""
        chosen = range(self.instances) if instance is None else [instance]
        for index in chosen:
            env = {**self.devhost_env, "DEVHOST_INSTANCE": f"instance-{index}"}
            name = self.devhost_name(index)
            log_path = self.workdir / f"{name}.log"
            host = devhost(self.bridge_ports[index], env, settings=self.settings_file, log_path=log_path)
            host.name = name
            self.services[name] = host.start()
        for index in chosen:
            self.services[self.devhost_name(index)].wait_ready(f"{self.bridges[index]}/health")

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()

    # -- driving the bridge ---------------------------------------------------------------------

    def post(
        self,
        body: bytes,
        headers: dict[str, str],
        source: str = "generic",
        path: str = "",
        *,
        instance: int = 0,
    ) -> httpx.Response:
        """POST to /webhooks/{source}[/path] (a path token), or to another route given as `path`, on
        one dev host instance (the first by default)."""
        bridge = self.bridges[instance]
        url = f"{bridge}/{path}" if path.startswith("xapi/") else f"{bridge}/webhooks/{source}{path}"
        return httpx.post(url, content=body, headers=headers, timeout=30)

    def send(
        self, events: Any, source: str = "generic", secret: str | None = None, *, instance: int = 0
    ) -> httpx.Response:
        """POST events to a generic-format source, signed with its secret (the stack's by default)."""
        body = json.dumps(events).encode()
        headers = signed_headers(body, secret or self.secret, f"msg_{uuid.uuid4().hex}", datetime.now(UTC))
        return self.post(body, headers, source=source, instance=instance)

    # -- looking at Graph (the sandbox) ---------------------------------------------------------

    def activity(self, external_id: str) -> dict[str, Any] | None:
        key = external_id.replace("'", "''")
        url = f"{self.activities_url}(externalcourseActivityId='{key}')"
        response = httpx.get(url, headers={"x-sandbox-client": "test"}, timeout=10)
        return response.json() if response.status_code == 200 else None

    def activity_of(self, source: str, event_id: str) -> dict[str, Any] | None:
        """The course activity an applied event went to (its external id is keyed on the queue side,
        after the learner is resolved, so the state store says which record it is)."""
        delivery = self.delivery(source, event_id)
        if delivery is None or delivery.status != "applied" or not delivery.activity_id:
            return None
        return self.activity(delivery.activity_id)

    def activities(self) -> list[dict[str, Any]]:
        response = httpx.get(self.activities_url, headers={"x-sandbox-client": "test"}, timeout=10)
        value: list[dict[str, Any]] = response.json()["value"]
        return value

    def requests_for(self, text: str) -> list[dict[str, Any]]:
        log = httpx.get(f"{self.sandbox}/_sandbox/requests", timeout=10).json()["value"]
        return [entry for entry in log if text in entry["path"] and entry["client"] == "bridge"]

    def faults(self, **settings: Any) -> None:
        httpx.post(f"{self.sandbox}/_sandbox/faults", json=settings, timeout=10).raise_for_status()

    # -- looking at the queues ------------------------------------------------------------------

    def peek(self, queue: str) -> list[str]:
        client = QueueClient.from_connection_string(
            self.ports.connection_string(), queue, message_decode_policy=TextBase64DecodePolicy()
        )
        with client:
            try:
                return [m.content for m in client.peek_messages(max_messages=32)]
            except Exception:  # the queue does not exist yet
                return []

    def dead_letter(self, source: str, event_id: str) -> DeadLetterRecord | None:
        """The state store's dead letter (parked or dead-lettered event), read from Azurite."""
        return self.with_state(lambda store: store.dead_letter(source, event_id))

    def delivery(self, source: str, event_id: str) -> DeliveryRecord | None:
        """What the state store knows of an event: applied, how many times seen."""
        return self.with_state(lambda store: store.delivery(source, event_id))

    def with_state(self, read: Callable[[TableStateStore], Awaitable[T]]) -> T:
        """Run `read` against the state store in Azurite (tests read it, and plant rows in it)."""

        async def run() -> T:
            from azure.data.tables.aio import TableServiceClient

            store = TableStateStore(TableServiceClient.from_connection_string(self.ports.connection_string()))
            try:
                return await read(store)
            finally:
                await store.close()

        return asyncio.run(run())

    def queue_depth(self, queue: str) -> int:
        """Messages on `queue`, invisible ones included; 0 for a queue nobody created yet (the real
        host creates a poison queue only when it first moves a message there)."""
        client = QueueClient.from_connection_string(self.ports.connection_string(), queue)
        with client:
            try:
                return int(client.get_queue_properties().approximate_message_count or 0)
            except ResourceNotFoundError:
                return 0


def wait_for(probe: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
