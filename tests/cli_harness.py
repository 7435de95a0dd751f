"""`python -m shared.cli` in process, over the unit tests' fakes: what an operator would see (exit
status, stdout, stderr) without Azurite, the sandbox or a subprocess.

`shared.cli.backends` is where every command gets its state store, queues and Graph, and its waits;
`fake_backends` puts tests/fakes.py behind it. stdout and stderr are captured the way the real streams
behave (UTF-8; stdout strict, stderr with backslash escapes), so text a real terminal could not take
fails here too. `BRIDGE_CLI_TRACEBACK=1` makes `main` re-raise an unexpected exception instead of its
last-resort one-line answer: a test sees the cause, with its traceback.
"""

from __future__ import annotations

import base64
import contextlib
import io
import ipaddress
import json
import math
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

from shared.cli import backends
from shared.cli.__main__ import main
from shared.graph.errors import GraphError
from shared.graph.msgraph_gateway import PROVIDER_READ_SCOPE, PROVIDER_SCOPE, NewProvider, ProviderRecord
from shared.state.models import DeadLetterRecord, DeliveryRecord
from shared.state.store import key
from tests.builders import TEST_SECRET
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore

PROVIDER = "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90"
SOURCES = {
    "generic": {"format": "generic"},
    "lrs": {"format": "xapi", "accountAttribute": "employeeId"},
}
SETTINGS = {
    "BRIDGE_STORAGE": "UseDevelopmentStorage=true",
    "BRIDGE_SOURCES": json.dumps(SOURCES),
    "BRIDGE_SOURCE_GENERIC_SECRET": TEST_SECRET,
    "BRIDGE_SOURCE_LRS_SECRET": "key:secret",
    "BRIDGE_PROVIDER_REGISTRATION_ID": PROVIDER,
    "BRIDGE_GRAPH_AUTH": "anonymous",
    "BRIDGE_GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0",
}


def write_settings(directory: Path, values: dict[str, str] | None = None) -> Path:
    path = directory / "local.settings.json"
    path.write_text(json.dumps({"Values": SETTINGS if values is None else values}), encoding="utf-8")
    return path


def _storage_down() -> Exception:
    from azure.core.exceptions import ServiceRequestError

    return ServiceRequestError("connection refused (fake)")


#: What Table storage refuses in a PartitionKey or RowKey ("Understanding the Table service data
#: model", learn.microsoft.com/rest/api/storageservices): / \ # ? and the control characters.
_NOT_IN_TABLE_KEYS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def _table_keys(source: str, event_id: str) -> None:
    """As TableStateStore addresses a row: the event id hashed (shared.state.store.key, which encodes
    it as UTF-8), the source as the PartitionKey, which storage answers 400 for when it holds a
    character it refuses."""
    from azure.core.exceptions import HttpResponseError

    key(event_id)
    if not source or _NOT_IN_TABLE_KEYS.search(source):
        raise HttpResponseError("The PartitionKey contains invalid characters (fake).")


class CliStore(MemoryStateStore):
    """The unit tests' state store as the CLI uses the table one (`close`, brief letter listings, and
    the keys Table storage takes)."""

    async def close(self) -> None:
        return None

    async def dead_letter(self, source: str, event_id: str) -> DeadLetterRecord | None:
        _table_keys(source, event_id)
        return await super().dead_letter(source, event_id)

    async def delivery(self, source: str, event_id: str) -> DeliveryRecord | None:
        _table_keys(source, event_id)
        return await super().delivery(source, event_id)

    async def dead_letters(self, *, brief: bool = False) -> AsyncIterator[DeadLetterRecord]:
        for record in list(self.letters.values()):
            yield record


class DownStore:
    """Unreachable storage: every call fails as the table client's do (an AzureError)."""

    async def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        def fail(*_: Any, **__: Any) -> Any:
            raise _storage_down()

        return fail


class CliGraph(FakeGraph):
    """The unit tests' Graph as msgraph-sdk meets it: a user looked up by a value that is not UTF-8
    text fails to encode into the request, as httpx fails."""

    async def find_user_id_by_upn(self, upn: str) -> str | None:
        upn.encode("utf-8")
        return await super().find_user_id_by_upn(upn)

    async def find_user_id_by(self, attribute: str, value: str) -> str | None:
        value.encode("utf-8")
        return await super().find_user_id_by(attribute, value)


class CliQueues(FakeQueue):
    def backlog(self, queue: str) -> int:
        if self.fail:
            raise _storage_down()
        return len(self.sent[queue])


def _check_wait(seconds: float) -> None:
    """What time.sleep and asyncio.sleep would refuse or hang on, refused here: a command's waits
    must be finite, not negative, and not longer than a day."""
    if not (math.isfinite(seconds) and 0 <= seconds <= 86_400):
        raise AssertionError(f"a command asked to wait {seconds!r} seconds")


def unsigned_token(claims: dict[str, Any]) -> str:
    """An access token's shape (header.claims.signature), unsigned: what the sandbox and `doctor` read."""

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.unsigned"


class TokenCredential:
    """An azure-identity credential as the commands use one: `get_token` gives a token with `claims`,
    or raises `fails` (a sign-in refused, a managed identity missing)."""

    def __init__(self, claims: dict[str, Any], fails: Exception | None = None) -> None:
        self.claims = claims
        self.fails = fails
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        if self.fails is not None:
            raise self.fails
        return AccessToken(unsigned_token(self.claims), int(time.time()) + 3600)


class FakeProviders:
    """The learning provider calls as the sandbox answers them (a token is asked for first, as the
    SDK's adapter asks; `errors` are raised by the next calls)."""

    def __init__(self) -> None:
        self.records: dict[str, ProviderRecord] = {}
        self.errors: list[Exception] = []
        self.credential: Any = None
        self.scope = PROVIDER_SCOPE

    def _enter(self) -> None:
        if self.credential is not None:
            self.credential.get_token(self.scope)
        if self.errors:
            raise self.errors.pop(0)

    async def register(self, new: NewProvider) -> ProviderRecord:
        self._enter()
        record = ProviderRecord(
            str(uuid.uuid4()),
            new.display_name,
            False,
            new.login_web_url,
            {
                "squareLogoWebUrlForDarkTheme": new.square_logo_dark,
                "squareLogoWebUrlForLightTheme": new.square_logo_light,
                "longLogoWebUrlForDarkTheme": new.long_logo_dark,
                "longLogoWebUrlForLightTheme": new.long_logo_light,
            },
        )
        self.records[record.id] = record
        return record

    async def get(self, registration_id: str) -> ProviderRecord | None:
        self._enter()
        return self.records.get(registration_id)

    async def set_sync(self, registration_id: str, enabled: bool) -> None:
        self._enter()
        if registration_id not in self.records:
            raise GraphError(404, "NotFound", "Learning provider was not found.")
        self.records[registration_id] = replace(
            self.records[registration_id], is_course_activity_sync_enabled=enabled
        )


@dataclass
class Backends:
    store: CliStore = field(default_factory=CliStore)
    storage_down: bool = False
    queue: CliQueues = field(default_factory=CliQueues)
    graph: CliGraph = field(default_factory=CliGraph)
    waits: list[float] = field(default_factory=list)
    providers: FakeProviders = field(default_factory=FakeProviders)
    #: The operator's delegated sign-in and the app's managed identity.
    operator: TokenCredential = field(
        default_factory=lambda: TokenCredential({"scp": "LearningProvider.ReadWrite"})
    )
    identity: TokenCredential = field(
        default_factory=lambda: TokenCredential(
            {
                "roles": [
                    "LearningSelfInitiatedCourse.ReadWrite.All",
                    "User.Read.All",
                    "LearningContent.Read.All",
                ]
            }
        )
    )
    #: What each logo URL answers (a status, or an exception to raise); azd's path and exit status.
    logo_answer: int | Exception = 200
    #: What a logo's host name resolves to (host -> addresses); a name not here does not resolve.
    resolved: dict[str, list[str]] = field(default_factory=dict)
    azd: str | None = None
    azd_status: int = 0
    programs: list[list[str]] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        _check_wait(seconds)
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        _check_wait(seconds)
        self.waits.append(seconds)

    def fetch_status(self, url: str, hop: Callable[[str], None], redirects: int = 5) -> int:
        httpx.URL(url)  # what the real GET refuses to build, refused here too
        if isinstance(self.logo_answer, Exception):
            raise self.logo_answer
        return self.logo_answer

    def addresses(self, host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """What a logo's host name resolves to: `resolved` says, otherwise nothing (not resolved)."""
        return [ipaddress.ip_address(a) for a in self.resolved.get(host, [])]

    def run(self, argv: list[str]) -> tuple[int, str]:
        self.programs.append(argv)
        return self.azd_status, "" if self.azd_status == 0 else "no azd environment (fake)"

    def app_identity(self, _: object) -> TokenCredential:
        return self.identity

    def find_azd(self) -> str | None:
        return self.azd

    def delegated(self, **_: Any) -> TokenCredential:
        return self.operator

    def provider_calls(self, base_url: str, credential: Any, *, read_only: bool = False) -> FakeProviders:
        self.providers.credential = credential
        self.providers.scope = PROVIDER_READ_SCOPE if read_only else PROVIDER_SCOPE
        return self.providers


@contextlib.contextmanager
def fake_backends(fakes: Backends) -> Iterator[Backends]:
    def state_store(_: object) -> CliStore | DownStore:
        return DownStore() if fakes.storage_down else fakes.store

    def queues(_: object) -> CliQueues:
        return fakes.queue

    def graph(_: object) -> CliGraph:
        return fakes.graph

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(backends, "state_store", state_store))
        stack.enter_context(mock.patch.object(backends, "queues", queues))
        stack.enter_context(mock.patch.object(backends, "graph", graph))
        stack.enter_context(mock.patch.object(backends, "sleep", fakes.sleep))
        stack.enter_context(mock.patch.object(backends, "async_sleep", fakes.async_sleep))
        stack.enter_context(mock.patch.object(backends, "delegated_credential", fakes.delegated))
        stack.enter_context(mock.patch.object(backends, "app_credential", fakes.app_identity))
        stack.enter_context(mock.patch.object(backends, "providers", fakes.provider_calls))
        stack.enter_context(mock.patch.object(backends, "fetch_status", fakes.fetch_status))
        stack.enter_context(mock.patch.object(backends, "addresses", fakes.addresses))
        stack.enter_context(mock.patch.object(backends, "azd", fakes.find_azd))
        stack.enter_context(mock.patch.object(backends, "run", fakes.run))
        yield fakes


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


def _stream(errors: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors=errors, newline="", write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8", errors="replace")


def run_cli(argv: Sequence[str], stdin: bytes = b"", *, reraise: bool = True) -> Outcome:
    """main(argv) with the real streams' behaviour; SystemExit (argparse) taken as the exit status.
    `reraise`: an unexpected exception propagates, with its traceback, instead of main's last-resort
    line (`BRIDGE_CLI_TRACEBACK=1`)."""
    out, err = _stream("strict"), _stream("backslashreplace")
    fake_stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "AZURE_"))}
    if reraise:
        environment["BRIDGE_CLI_TRACEBACK"] = "1"
    with (
        mock.patch.dict(os.environ, environment, clear=True),
        mock.patch.object(sys, "stdin", fake_stdin),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return Outcome(code, _text(out), _text(err))
