"""App settings, one by one (each is documented in local.settings.sample.json and
docs/deploy/configuration.md).

Settings are flat strings because that is what Azure app settings and Key Vault references are. Source
definitions sit in one JSON setting; each source's secret sits in its own setting so that it can be a
Key Vault reference and never appears next to non-secret configuration.

A problem with what nothing works without (storage, the provider registration id, the Graph endpoint)
raises ConfigurationError, naming each setting; the Functions app keeps it and every function reports
it (shared.functions.bridge: the app must still start, or the host would run with no function at all).
A source that cannot be used (its definition, options or secret) is reported and set aside: every
other source and the queue side keep working, and that source answers 503 until it is fixed.

Plain frozen dataclasses, not pydantic models: the settings are read when function_app is imported,
and pydantic there would add its import to every cold start (every value is checked by hand below
anyway).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from shared.config.exceptions import ConfigurationError
from shared.events.names import SOURCE_NAME_PATTERN

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_PARK_TIMEOUT_HOURS = 72
DEFAULT_CLAIM_LEASE_SECONDS = 60
#: A year and a month: a platform's late redeliveries and a year-end report still meet their rows.
DEFAULT_RETENTION_DAYS = 400

SOURCES = "BRIDGE_SOURCES"
PROVIDER_REGISTRATION_ID = "BRIDGE_PROVIDER_REGISTRATION_ID"
GRAPH_BASE_URL = "BRIDGE_GRAPH_BASE_URL"
GRAPH_AUTH = "BRIDGE_GRAPH_AUTH"
MAX_BODY_BYTES = "BRIDGE_MAX_BODY_BYTES"
PARK_TIMEOUT_HOURS = "BRIDGE_PARK_TIMEOUT_HOURS"
CLAIM_LEASE_SECONDS = "BRIDGE_CLAIM_LEASE_SECONDS"
RETENTION_DAYS = "BRIDGE_RETENTION_DAYS"
STORAGE = "BRIDGE_STORAGE"
#: Set by infra/ (enableAssignments) together with the LearningAssignedCourse.ReadWrite.All grant.
ASSIGNMENTS_ENABLED = "BRIDGE_ASSIGNMENTS_ENABLED"
MANAGED_IDENTITY_CLIENT_ID = "AZURE_CLIENT_ID"
#: What App Service leaves in a setting whose Key Vault reference it could not resolve.
KEY_VAULT_REFERENCE_PREFIX = "@microsoft.keyvault("


class GraphAuth(StrEnum):
    MANAGED_IDENTITY = "managedIdentity"
    ANONYMOUS = "anonymous"  # only for the local Graph sandbox on loopback


def secret_setting_name(source: str) -> str:
    """`generic` -> `BRIDGE_SOURCE_GENERIC_SECRET`."""
    return f"BRIDGE_SOURCE_{source.upper().replace('-', '_')}_SECRET"


class SecretValue(Protocol):
    """A secret that gives its value only when asked: `Secret`, or pydantic's `SecretStr`."""

    def get_secret_value(self) -> str: ...


class Secret:
    """A setting's secret value, masked in every repr and str so that no log line or traceback of the
    settings shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class SourceSettings:
    """One configured source. `options` are checked by the source's format, which knows them."""

    name: str
    format: str
    options: Mapping[str, Any] = field(default_factory=dict)
    secret: SecretValue | None = None
    #: Why the secret setting holds no usable secret although it is set (never its value).
    secret_problem: str | None = None


@dataclass(frozen=True)
class Settings:
    sources: Mapping[str, SourceSettings]
    provider_registration_id: str
    #: Sources named in BRIDGE_SOURCES whose definition cannot be used: name -> why (no values).
    source_problems: Mapping[str, str] = field(default_factory=dict)
    #: Why BRIDGE_SOURCES as a whole cannot be read, when it cannot.
    sources_problem: str | None = None
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    graph_auth: GraphAuth = GraphAuth.MANAGED_IDENTITY
    managed_identity_client_id: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    storage_connection_string: SecretValue | None = None
    storage_queue_service_uri: str | None = None
    storage_table_service_uri: str | None = None
    storage_client_id: str | None = None
    #: `BRIDGE_STORAGE__credential=managedidentity` (what infra/ sets in the app): identity-based storage
    #: uses the app's managed identity. Without it, as in the Functions host, the credential is
    #: DefaultAzureCredential, so the operators' CLI reaches the same storage with their az/azd sign-in.
    storage_managed_identity: bool = False
    park_timeout_hours: int = DEFAULT_PARK_TIMEOUT_HOURS
    claim_lease_seconds: int = DEFAULT_CLAIM_LEASE_SECONDS
    retention_days: int = DEFAULT_RETENTION_DAYS
    #: Whether the bridge writes learningAssignment records (its identity holds
    #: LearningAssignedCourse.ReadWrite.All); when off, an event carrying an assignment is refused.
    assignments_enabled: bool = False


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate every setting and report all problems at once (an operator fixes them in one go).

    Raises ConfigurationError only for settings nothing works without; problems with sources are
    returned in the settings (`source_problems`, `sources_problem`) for the app to report.
    """
    problems: list[str] = []
    sources, source_problems, sources_problem = read_sources(env)
    registration_id = env.get(PROVIDER_REGISTRATION_ID, "").strip()
    if not registration_id:
        problems.append(
            f"{PROVIDER_REGISTRATION_ID} is required: the Viva Learning provider registration id "
            "whose course activities the bridge writes."
        )
    base_url = env.get(GRAPH_BASE_URL, "").strip().rstrip("/") or DEFAULT_GRAPH_BASE_URL
    try:  # urlsplit raises ValueError for a malformed host ("https://[::1/v1.0")
        parts = urlsplit(base_url)
        host, netloc, scheme = parts.hostname, parts.netloc, parts.scheme
    except ValueError:
        host, netloc, scheme = None, "", ""
    if scheme not in ("http", "https") or not netloc:
        problems.append(f"{GRAPH_BASE_URL} must be an http(s) URL such as {DEFAULT_GRAPH_BASE_URL}.")
    auth = _graph_auth(env, problems)
    if auth is GraphAuth.ANONYMOUS and not _is_loopback(host):
        problems.append(
            f"{GRAPH_AUTH}=anonymous is only allowed with a loopback {GRAPH_BASE_URL} (the local sandbox)."
        )
    max_body = _positive_int(env, MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, problems)
    park_hours = _positive_int(env, PARK_TIMEOUT_HOURS, DEFAULT_PARK_TIMEOUT_HOURS, problems)
    claim_lease = _positive_int(env, CLAIM_LEASE_SECONDS, DEFAULT_CLAIM_LEASE_SECONDS, problems)
    retention_days = _positive_int(env, RETENTION_DAYS, DEFAULT_RETENTION_DAYS, problems)
    assignments = env.get(ASSIGNMENTS_ENABLED, "").strip().lower()
    if assignments not in ("", "true", "false"):
        problems.append(f"{ASSIGNMENTS_ENABLED} is true or false (default false), not {assignments!r}.")
    storage = env.get(STORAGE, "").strip()
    queue_uri = env.get(f"{STORAGE}__queueServiceUri", "").strip()
    table_uri = env.get(f"{STORAGE}__tableServiceUri", "").strip()
    if not storage and not (queue_uri and table_uri):
        problems.append(
            f"{STORAGE} is required: a storage connection string, or identity-based settings "
            f"{STORAGE}__queueServiceUri and {STORAGE}__tableServiceUri (with {STORAGE}__credential="
            f"managedidentity and {STORAGE}__clientId for the app's user-assigned identity)."
        )
    if problems:
        raise ConfigurationError(problems)
    return Settings(
        sources=sources,
        source_problems=source_problems,
        sources_problem=sources_problem,
        provider_registration_id=registration_id,
        graph_base_url=base_url,
        graph_auth=auth,
        managed_identity_client_id=env.get(MANAGED_IDENTITY_CLIENT_ID) or None,
        max_body_bytes=max_body,
        storage_connection_string=Secret(storage) if storage else None,
        storage_queue_service_uri=queue_uri or None,
        storage_table_service_uri=table_uri or None,
        park_timeout_hours=park_hours,
        claim_lease_seconds=claim_lease,
        retention_days=retention_days,
        assignments_enabled=assignments == "true",
        storage_client_id=env.get(f"{STORAGE}__clientId") or None,
        storage_managed_identity=env.get(f"{STORAGE}__credential", "").strip().lower() == "managedidentity",
    )


def load_source_settings(env: Mapping[str, str]) -> dict[str, SourceSettings]:
    """Only the sources (for tools such as the CLI that need nothing else); any problem raises."""
    sources, source_problems, sources_problem = read_sources(env)
    problems = [sources_problem] if sources_problem else []
    problems += source_problems.values()
    if problems:
        raise ConfigurationError(problems)
    return sources


def read_sources(env: Mapping[str, str]) -> tuple[dict[str, SourceSettings], dict[str, str], str | None]:
    """(usable source definitions, name -> why a definition is unusable, why BRIDGE_SOURCES is)."""
    raw = env.get(SOURCES, "").strip()
    if not raw:
        example = '{"generic": {"format": "generic"}}'
        return {}, {}, f"{SOURCES} is required: a JSON object such as {example}."
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        return {}, {}, f"{SOURCES} is not valid JSON ({exc.msg} at position {exc.pos})."
    except (ValueError, RecursionError):  # a number too long for int(), nesting too deep to parse
        return {}, {}, f"{SOURCES} is not JSON the bridge can read (too deeply nested or a number too long)."
    if not isinstance(parsed, dict) or not parsed:
        return {}, {}, f"{SOURCES} must be a non-empty JSON object of source name to definition."
    sources: dict[str, SourceSettings] = {}
    problems: dict[str, str] = {}
    for name, definition in parsed.items():
        source = _source(name, definition, env)
        if isinstance(source, str):
            problems[name] = source
        else:
            sources[name] = source
    return sources, problems, None


def _source(name: str, definition: Any, env: Mapping[str, str]) -> SourceSettings | str:
    """The source's settings, or why its definition cannot be used (never a value)."""
    where = f"{SOURCES}[{name!r}]"
    if not re.match(SOURCE_NAME_PATTERN, name):
        return f"{where}: source names use a-z, 0-9 and '-' (they appear in URLs)."
    if not isinstance(definition, dict) or not isinstance(definition.get("format"), str):
        return f'{where} must be an object with a "format", e.g. {{"format": "generic"}}.'
    if "secret" in definition:
        return (
            f"{where} contains a secret; put it in the app setting {secret_setting_name(name)} "
            "(a Key Vault reference in Azure) instead."
        )
    secret, secret_problem = _secret(secret_setting_name(name), env)
    options = {k: v for k, v in definition.items() if k != "format"}
    return SourceSettings(
        name=name,
        format=definition["format"],
        options=options,
        secret=secret,
        secret_problem=secret_problem,
    )


def _secret(setting: str, env: Mapping[str, str]) -> tuple[Secret | None, str | None]:
    """The secret in a setting, or None and why not when the setting is set but holds no secret."""
    value = env.get(setting, "").strip()
    if value.lower().startswith(KEY_VAULT_REFERENCE_PREFIX):
        return None, (
            f"{setting} is an unresolved Key Vault reference: the secret it names does not exist yet, "
            "or the app's identity may not read it. Set the secret, then restart the app."
        )
    return (Secret(value) if value else None), None


def _graph_auth(env: Mapping[str, str], problems: list[str]) -> GraphAuth:
    raw = env.get(GRAPH_AUTH, "").strip() or GraphAuth.MANAGED_IDENTITY.value
    try:
        return GraphAuth(raw)
    except ValueError:
        allowed = ", ".join(a.value for a in GraphAuth)
        problems.append(f"{GRAPH_AUTH} must be one of {allowed}.")
        return GraphAuth.MANAGED_IDENTITY


def _positive_int(env: Mapping[str, str], key: str, default: int, problems: list[str]) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    # ASCII digits only (isdigit() also says yes to '²'), and few enough for int() (it refuses more
    # than 4,300): an exception here would escape the app's import.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= _MAX_DIGITS) or int(raw) <= 0:
        problems.append(f"{key} must be a positive whole number (default {default}).")
        return default
    return int(raw)


#: The most digits a whole-number setting may have (far more than any sensible value).
_MAX_DIGITS = 12


def _is_loopback(host: str | None) -> bool:
    if host in (None, ""):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_local_settings(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json, for tools that run outside the Functions host."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    if not text.strip():  # an empty file (or /dev/null): no settings from it
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError([f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})."]) from exc
    values = document.get("Values", {}) if isinstance(document, dict) else {}
    return {str(k): str(v) for k, v in values.items()}
