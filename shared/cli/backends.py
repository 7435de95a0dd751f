"""What the commands run against: the configured state store, queues and Graph, and the waits.

One module that every command asks, at the moment it needs them, so that the tests can put the
project's fakes (tests/fakes.py) behind every command at once and drive `main(argv)` in process:
tests/unit/test_cli_totality.py feeds every command arbitrary files and arguments that way. The waits
are here for the same reason: a command paced to 0.01 requests a second must not make a test sleep.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.config.settings import Settings
    from shared.graph.gateway import LearningGraph
    from shared.graph.msgraph_gateway import MsGraphProviders
    from shared.state.store import TableStateStore
    from shared.storage.queues import StorageQueues

#: How a command waits: the import's pacing (blocking) and Graph's Retry-After and pacing (async).
sleep = time.sleep
async_sleep = asyncio.sleep


def state_store(settings: Settings) -> TableStateStore:
    from shared.state.store import TableStateStore
    from shared.state.tables import table_service_client

    return TableStateStore(table_service_client(settings))


def queues(settings: Settings) -> StorageQueues:
    from shared.storage.queues import StorageQueues

    return StorageQueues(settings)


def graph(settings: Settings) -> LearningGraph:
    from shared.graph.msgraph_gateway import build_learning_graph

    return build_learning_graph(settings)


# ---- the operator's sign-in, the app's identity, and what lies outside the bridge -----------------


#: For tests only: an azure-core transport that answers for the Microsoft identity platform
#: (tests/identity_platform.py), so that the real DeviceCodeCredential and MSAL run the device code
#: flow end to end without the internet. None (always, outside tests): the real identity platform.
identity_transport: Any = None


def delegated_credential(*, browser: bool, tenant_id: str | None, client_id: str | None) -> Any:
    """The operator signed in as themselves (delegated): a device code by default, the system browser
    with `browser`. azure-identity keeps the token in memory only; nothing is written."""
    import sys

    from azure.identity import DeviceCodeCredential, InteractiveBrowserCredential

    options: dict[str, Any] = {}
    if identity_transport is not None:
        options["transport"] = identity_transport
    if tenant_id:
        options["tenant_id"] = tenant_id
    if client_id:
        options["client_id"] = client_id
    if browser:
        return InteractiveBrowserCredential(**options)

    def prompt(verification_uri: str, user_code: str, expires_on: Any) -> None:
        # On stderr: stdout stays the command's answer (and JSON with --json).
        print(f"To sign in, open {verification_uri} and enter the code {user_code}.", file=sys.stderr)

    return DeviceCodeCredential(prompt_callback=prompt, **options)


def app_credential(settings: Settings) -> Any:
    """The credential the bridge itself uses for Graph (its managed identity)."""
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=settings.managed_identity_client_id)


def fetch_status(url: str, hop: Callable[[str], None], redirects: int = 5) -> int:
    """The HTTP status a GET of `url` answers, following at most `redirects` redirects (a 3xx status
    when there are more); `hop` is called with each redirect's target before it is followed and raises
    to refuse it. Raises httpx.HTTPError."""
    import httpx

    with httpx.Client(timeout=10.0, follow_redirects=False) as client:
        for _ in range(redirects + 1):
            with client.stream("GET", url) as response:
                status = response.status_code
                target = response.headers.get("location") if response.is_redirect else None
            if target is None:
                return status
            url = str(httpx.URL(url).join(target))
            hop(url)
        return status


def addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses a host name resolves to; empty when it does not resolve (the GET then says so)."""
    import socket

    try:
        found = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    resolved: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for *_, sockaddr in found:
        try:
            resolved.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        except ValueError:
            continue
    return resolved


def azd() -> str | None:
    """The Azure Developer CLI's path, when it is installed."""
    import shutil

    return shutil.which("azd")


#: How long a helper program (`azd env set`) may take before the command gives up on it.
RUN_TIMEOUT = 60


def run(argv: list[str]) -> tuple[int, str]:
    """Run a program with no input (a prompt fails instead of waiting); (exit status, its stderr's last
    line). A program that cannot start or takes longer than RUN_TIMEOUT is exit status -1 with why."""
    import subprocess

    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return -1, f"no answer within {RUN_TIMEOUT} s"
    except OSError as exc:
        return -1, f"could not run it ({exc.strerror or type(exc).__name__})"
    lines = done.stderr.strip().splitlines()
    return done.returncode, lines[-1] if lines else ""


def providers(base_url: str, credential: Any | None, *, read_only: bool = False) -> MsGraphProviders:
    """The learning provider calls (delegated; `credential` None: no token, the local sandbox;
    `read_only`: signed in for LearningProvider.Read only)."""
    from shared.graph.msgraph_gateway import build_provider_client

    return build_provider_client(base_url, credential, read_only=read_only)
