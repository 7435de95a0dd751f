"""The CLI's commands. Each takes the parsed arguments and returns the exit status."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from shared.cli import backends
from shared.cli.errors import CliError
from shared.config.exceptions import ConfigurationError
from shared.config.settings import (
    GraphAuth,
    Settings,
    SourceSettings,
    load_settings,
    load_source_settings,
)
from shared.events.model import CanonicalEvent
from shared.sources.base import Delivery, SourceFormat, load_json
from shared.sources.exceptions import InvalidPayload, SourceConfigurationError, UnknownSource
from shared.sources.formats.generic import signed_headers
from shared.sources.registry import build_source, format_without_secret
from shared.state.models import DeliveryRecord


def environment(settings_file: Path) -> dict[str, str]:
    """The environment over the settings file's `Values`, as the Functions host reads them."""
    return {**_local_settings(settings_file), **os.environ}


def _local_settings(path: Path) -> dict[str, str]:
    """What shared.config's read_local_settings gives (a missing or blank file: no settings; each value
    as text), read so that any file is an answer: one that cannot be read, is not JSON the webhook would
    take (nesting, huge numbers), or whose `Values` is not an object, is a CliError naming it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CliError(f"cannot read the settings file {path}: {exc.strerror}") from None
    if not raw.strip():
        return {}
    try:
        document = load_json(raw)
    except InvalidPayload as exc:
        raise CliError(f"{path}: {str(exc).replace('The body', 'the settings file', 1)}") from None
    values = document.get("Values", {}) if isinstance(document, dict) else {}
    if not isinstance(values, dict):
        raise CliError(f'{path}: "Values" is not an object of settings')
    return {str(k): str(v) for k, v in values.items()}


def _read_body(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _source_settings(settings_file: Path, name: str) -> SourceSettings:
    try:
        sources = load_source_settings(environment(settings_file))
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None
    if name not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise CliError(f"no source named {name!r} is configured (configured: {known})")
    return sources[name]


def _parser(args: argparse.Namespace) -> SourceFormat:
    try:
        if args.source is not None:
            settings = _source_settings(args.settings, args.source)
            return build_source(settings, offline=True)
        return format_without_secret(args.format)
    except (UnknownSource, SourceConfigurationError) as exc:
        raise CliError(str(exc)) from None


def translate(args: argparse.Namespace) -> int:
    parser = _parser(args)
    body = _read_body(args.file)
    delivery = Delivery(parser.name, body, {}, datetime.now(UTC))
    try:
        result = parser.read(delivery)
    except InvalidPayload as exc:
        raise _invalid(args.file, exc) from None
    for item in result.ignored:
        print(f"ignored {item.reference or '(item)'}: {item.reason}", file=sys.stderr)
    json.dump([event.to_wire() for event in result.events], sys.stdout, indent=2)
    print()
    return 0


def _invalid(path: Path, exc: InvalidPayload) -> CliError:
    """An invalid body as one line: the reason, then each field and why."""
    details = "".join(f"; {p.pointer}: {p.detail}" for p in exc.problems)
    return CliError(f"{path}: {exc}{details}")


def send(args: argparse.Namespace) -> int:
    """Post FILE as its source would, once it is known to be valid: an invalid body is answered here,
    with its fields, instead of being sent for the bridge to refuse."""
    import httpx

    settings = _source_settings(args.settings, args.source)
    source = _build(settings)
    if settings.format != "generic":
        raise CliError(f"send signs the generic format only; {args.source!r} is {settings.format!r}")
    assert settings.secret is not None  # the generic format requires one
    url = _webhook_url(args.url, args.source)
    body = _read_body(args.file)
    try:
        events = source.read(Delivery(args.source, body, {}, datetime.now(UTC))).events
    except InvalidPayload as exc:
        raise _invalid(args.file, exc) from None
    message_id = f"msg_{uuid.uuid4().hex}"
    headers = signed_headers(body, settings.secret.get_secret_value(), message_id, datetime.now(UTC))
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise CliError(f"could not reach the bridge at {url}: {exc}") from None
    accepted_at = time.monotonic()
    print(f"{response.status_code} {response.reason_phrase}")
    print(response.text)
    if not response.is_success:
        return 1
    if args.wait:
        return _wait_for_activities(args, events, accepted_at)
    return 0


def _webhook_url(base: str, source: str) -> str:
    """The source's webhook under --url, refused here when it is no http(s) URL to post to."""
    import httpx

    url = f"{base.rstrip('/')}/webhooks/{source}"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, UnicodeError):  # bytes a shell passed that are not UTF-8 cannot be sent
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise CliError(f"--url {base[:200]!r} is not an http(s) URL of the bridge")
    return url


def _build(settings: SourceSettings) -> SourceFormat:
    try:
        return build_source(settings)
    except SourceConfigurationError as exc:
        raise CliError(str(exc)) from None


def _wait_for_activities(args: argparse.Namespace, events: list[CanonicalEvent], since: float) -> int:
    """Follow each event through the state store until it is applied (or parked, or dead-lettered),
    then show its course activity as Graph holds it. The record's external id is known only once the
    queue side has resolved the learner, so the state store is where to look. Anonymous Graph reads
    only: the local sandbox."""
    import httpx

    settings = _wait_settings(args)
    provider = (
        f"{settings.graph_base_url}/employeeExperience/learningProviders/{settings.provider_registration_id}"
    )

    def show(event_id: str, delivery: DeliveryRecord) -> None:
        elapsed = time.monotonic() - since
        if delivery.status != "applied":
            print(f"event {event_id} is {delivery.status} after {elapsed:.2f} s (see `deadletters list`)")
            return
        key = delivery.activity_id.replace("'", "''")
        url = f"{provider}/learningCourseActivities(externalcourseActivityId='{key}')"
        found = httpx.get(url, timeout=10)
        record = found.json() if found.status_code == 200 else "no record (every event behind it voided)"
        print(f"event {event_id} is in Graph after {elapsed:.2f} s (GET {url}):")
        print(json.dumps(record, indent=2))

    from azure.core.exceptions import AzureError

    pending = [event.event_id for event in events]
    try:
        failed = asyncio.run(_follow(settings, args.source, pending, since + args.wait, show))
    except AzureError as exc:
        raise CliError(
            f"the state store could not be read ({type(exc).__name__}); is storage running?"
        ) from None
    if failed:
        print(f"not applied after {args.wait} s: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _wait_settings(args: argparse.Namespace) -> Settings:
    try:
        settings = load_settings(environment(args.settings))
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None
    if settings.graph_auth is not GraphAuth.ANONYMOUS:
        raise CliError("--wait reads Graph anonymously, so it works with the local sandbox only")
    return settings


async def _follow(
    settings: Settings,
    source: str,
    event_ids: list[str],
    deadline: float,
    show: Callable[[str, DeliveryRecord], None],
) -> list[str]:
    """Poll the deliveries table until every event has an outcome; the ids still without one."""
    store = backends.state_store(settings)
    pending = list(event_ids)
    try:
        while pending and time.monotonic() < deadline:
            for event_id in list(pending):
                delivery = await store.delivery(source, event_id)
                if delivery is not None and delivery.status in ("applied", "failed"):
                    show(event_id, delivery)
                    pending.remove(event_id)
            if pending:
                await asyncio.sleep(0.05)
    finally:
        await store.close()
    return pending
