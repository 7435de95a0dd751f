"""`provider register | show | enable-sync | disable-sync`: the Viva Learning provider, signed in as a
user.

Registering, reading and updating a learning provider are delegated-only calls (LearningProvider.Read /
LearningProvider.ReadWrite; the signed-in user a licensed Knowledge Administrator): the bridge's managed
identity can do none of them. The operator signs in through azure-identity, with a device code by
default (`--browser`: the system browser); the token stays in memory, nothing is stored. The local
sandbox with `BRIDGE_GRAPH_AUTH=anonymous` still gets the delegated token (the sandbox reads its claims
and refuses an application one, as Graph does).

`register` writes the registration id into the settings file (BRIDGE_PROVIDER_REGISTRATION_ID) and,
when `azd` is installed, into the azd environment.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import re
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from shared.cli import backends
from shared.cli.commands import environment
from shared.cli.errors import CliError
from shared.config.settings import DEFAULT_GRAPH_BASE_URL, GRAPH_BASE_URL, PROVIDER_REGISTRATION_ID
from shared.graph.errors import GraphError, GraphUnavailable

if TYPE_CHECKING:
    from shared.graph.msgraph_gateway import MsGraphProviders, ProviderRecord

T = TypeVar("T")

#: The four logos, in the order `--logos` takes them, as Graph names them (Create learningProvider).
LOGOS = (
    "squareLogoWebUrlForDarkTheme",
    "squareLogoWebUrlForLightTheme",
    "longLogoWebUrlForDarkTheme",
    "longLogoWebUrlForLightTheme",
)
#: Who can make these calls, said with every refusal.
WHO = (
    "provider calls are delegated only: sign in as a user holding the Knowledge Administrator role (or "
    "higher) with a Viva Learning licence, consenting to LearningProvider.ReadWrite"
)
OPERATOR_CLIENT_ID = "BRIDGE_OPERATOR_CLIENT_ID"
OPERATOR_TENANT_ID = "BRIDGE_OPERATOR_TENANT_ID"


def add_parser(sub: Any) -> None:
    provider = sub.add_parser(
        "provider",
        help="register the Viva Learning provider, show it, turn its course activity sync on or off",
        description="Delegated calls: you sign in as yourself (a device code; --browser for the system "
        "browser), a Knowledge Administrator with a Viva Learning licence. No secret is stored.",
    )
    actions = provider.add_subparsers(dest="action", required=True, metavar="ACTION")

    def signed_in(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--browser", action="store_true", help="sign in with the system browser")
        parser.add_argument("--tenant", help=f"the Entra tenant id (default: {OPERATOR_TENANT_ID}, or any)")
        parser.add_argument(
            "--client-id",
            help=f"the public client app to sign in with (default: {OPERATOR_CLIENT_ID}, or "
            "azure-identity's)",
        )
        parser.add_argument("--json", action="store_true", help="print the provider as JSON")

    register = actions.add_parser(
        "register",
        help="create the learning provider and save its registration id",
        description="POST /employeeExperience/learningProviders with a display name and the four logos "
        "Graph requires (each checked first: a public https URL that answers). Writes the registration "
        f"id into the settings file ({PROVIDER_REGISTRATION_ID}) and, when azd is installed, into the "
        "azd environment. Sync starts off: `provider enable-sync` turns it on.",
    )
    register.add_argument("--name", required=True, help="the provider's display name in Viva Learning")
    register.add_argument(
        "--logos",
        nargs=4,
        required=True,
        metavar=("SQUARE_DARK", "SQUARE_LIGHT", "LONG_DARK", "LONG_LIGHT"),
        help="the four logo URLs: square and long, for the dark and the light theme",
    )
    register.add_argument("--login-url", help="loginWebUrl: where learners sign in to your platform")
    signed_in(register)
    register.set_defaults(run=register_provider)

    for name, helping, run in [
        ("show", "the provider as Graph has it", show),
        ("enable-sync", "turn isCourseActivitySyncEnabled on (the bridge's writes need it)", enable_sync),
        ("disable-sync", "turn isCourseActivitySyncEnabled off", disable_sync),
    ]:
        action = actions.add_parser(name, help=helping)
        action.add_argument("--id", help=f"the registration id (default: {PROVIDER_REGISTRATION_ID})")
        signed_in(action)
        action.set_defaults(run=run)


# ---- commands -------------------------------------------------------------------------------------


def register_provider(args: argparse.Namespace) -> int:
    from shared.graph.msgraph_gateway import NewProvider

    env = environment(args.settings)
    base_url = _base_url(env)
    name = args.name.strip()
    if not name or len(name) > 256 or not name.isprintable():
        raise CliError("--name must be a display name of 1 to 256 printable characters")
    logos = [_checked_logo(label, url) for label, url in zip(LOGOS, args.logos, strict=True)]
    login = _checked_url("--login-url", args.login_url) if args.login_url else None
    _settings_document(args.settings)  # a file we could not write back is refused before Graph is asked
    new = NewProvider(name, logos[0], logos[1], logos[2], logos[3], login)
    record = _graph(args, env, base_url, lambda providers: providers.register(new))
    say = _say(args)
    _save_registration_id(args.settings, record.id, say)
    _print(args, record, f"registered learning provider {record.id}")
    other = os.environ.get(PROVIDER_REGISTRATION_ID)
    if other and other != record.id:
        print(
            f"note: the environment's {PROVIDER_REGISTRATION_ID} still names another provider and wins "
            "over the settings file",
            file=sys.stderr,
        )
    say("next: `python -m shared.cli provider enable-sync` turns course activity sync on")
    return 0


def show(args: argparse.Namespace) -> int:
    env = environment(args.settings)
    registration_id = _registration_id(args, env)
    record = _graph(
        args, env, _base_url(env), lambda providers: providers.get(registration_id), read_only=True
    )
    if record is None:
        raise CliError(
            f"no learning provider {registration_id!r} in this tenant: check {PROVIDER_REGISTRATION_ID}, "
            "or `provider register`"
        )
    _print(args, record, "")
    return 0


def enable_sync(args: argparse.Namespace) -> int:
    return _set_sync(args, enabled=True)


def disable_sync(args: argparse.Namespace) -> int:
    return _set_sync(args, enabled=False)


def _set_sync(args: argparse.Namespace, *, enabled: bool) -> int:
    env = environment(args.settings)
    registration_id = _registration_id(args, env)

    async def switch(providers: MsGraphProviders) -> ProviderRecord | None:
        await providers.set_sync(registration_id, enabled)
        return await providers.get(registration_id)

    record = _graph(args, env, _base_url(env), switch)
    if record is None:  # pragma: no cover - a PATCH of an unknown provider fails first
        raise CliError(f"no learning provider {registration_id!r} in this tenant")
    state = "on" if record.is_course_activity_sync_enabled else "off"
    _print(args, record, f"course activity sync is {state} for learning provider {record.id}")
    if enabled:
        _say(args)(
            "then: `python -m shared.cli replay --reason providerNotEnabled` for events refused meanwhile"
        )
    return 0


# ---- helpers --------------------------------------------------------------------------------------


def _base_url(env: dict[str, str]) -> str:
    base_url = env.get(GRAPH_BASE_URL, "").strip().rstrip("/") or DEFAULT_GRAPH_BASE_URL
    try:  # urlsplit raises ValueError for a malformed host ("https://[::1/v1.0")
        parts = urlsplit(base_url)
        host, scheme = parts.hostname, parts.scheme
    except ValueError:
        host, scheme = None, ""
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not host or not (scheme == "https" or (scheme == "http" and loopback)):
        raise CliError(f"{GRAPH_BASE_URL} must be an https URL (http only for a loopback sandbox)")
    return base_url


def _registration_id(args: argparse.Namespace, env: dict[str, str]) -> str:
    registration_id = (args.id or env.get(PROVIDER_REGISTRATION_ID, "")).strip()
    if not registration_id:
        raise CliError(
            f"no registration id: pass --id or set {PROVIDER_REGISTRATION_ID} (`provider register`)"
        )
    if (
        len(registration_id) > 200
        or any(c in registration_id for c in "/?#'\\")
        or not registration_id.isprintable()
    ):
        raise CliError("the registration id is not one Graph gives (a GUID-like id)")
    return registration_id


#: Names that never reach the internet (RFC 6761 `localhost`, mDNS `.local`, and `.internal`).
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal")
#: The redirects a logo's GET may follow, each hop checked like the logo's own URL.
LOGO_REDIRECTS = 5


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, in any spelling a resolver takes: the standard forms
    (ipaddress) and the BSD inet_aton ones (`127.1`, `2130706433`, `0x7f000001`, `10.1`); an
    IPv4-mapped IPv6 address as its IPv4 address."""
    import socket

    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


#: IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64's well-known prefix (RFC 6052)
#: and the IPv4-compatible form (RFC 4291 2.5.5.1); 6to4 (RFC 3056) is ipaddress's `sixtofour`.
_WRAPPING = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Not loopback, private, link-local, site-local, reserved, shared (100.64/10), unspecified or
    multicast; an IPv6 address that wraps an IPv4 one (mapped, NAT64, IPv4-compatible, 6to4) is as
    public as the IPv4 address it wraps."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:
            return False
        wrapped = address.ipv4_mapped or address.sixtofour
        if wrapped is None and any(address in net for net in _WRAPPING):
            wrapped = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if wrapped is not None:
            return _public(wrapped)
    return address.is_global and not address.is_multicast


def _checked_url(label: str, url: str) -> str:
    """A public https URL: no other scheme, no credentials, not a loopback, private, link-local or
    reserved host however it is spelled (trailing dots, a `.localhost` name, an address in any form a
    resolver takes), nor a name that resolves to one."""
    if len(url) > 2000 or not url.isprintable() or any(c.isspace() for c in url):
        raise CliError(f"{label}: {url[:200]!r} is not a public https URL")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme != "https" or not host or parts.username or parts.password:
        raise CliError(f"{label}: {url[:200]!r} is not a public https URL")
    name = host.rstrip(".")
    address = _literal_address(name)
    if (
        not name
        or name == "localhost"
        or name.endswith(_PRIVATE_SUFFIXES)
        or (address is not None and not _public(address))
        or (address is None and not all(_public(a) for a in backends.addresses(name)))
    ):
        raise CliError(
            f"{label}: {url[:200]!r} is not public (Viva Learning fetches the logo from the internet)"
        )
    return url


def _checked_logo(label: str, url: str) -> str:
    """Create learningProvider requires the four logos as public URLs: each is checked to answer, and
    each redirect on the way is checked as the URL itself is (Viva Learning fetches where it leads)."""
    import httpx

    _checked_url(label, url)

    def hop(target: str) -> None:
        try:
            _checked_url(label, target)
        except CliError:
            raise CliError(
                f"{label}: {url[:200]!r} redirects to {target[:200]!r}, which is not a public https URL "
                "(Viva Learning fetches the logo from the internet)"
            ) from None

    try:
        status = backends.fetch_status(url, hop)
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise CliError(f"{label}: {url[:200]!r} did not answer ({type(exc).__name__})") from None
    if 300 <= status < 400:
        raise CliError(f"{label}: {url[:200]!r} redirects more than {LOGO_REDIRECTS} times")
    if not 200 <= status < 300:
        raise CliError(
            f"{label}: {url[:200]!r} answered HTTP {status}; Viva Learning needs a logo it can fetch"
        )
    return url


def _graph(
    args: argparse.Namespace,
    env: dict[str, str],
    base_url: str,
    work: Callable[[MsGraphProviders], Coroutine[Any, Any, T]],
    *,
    read_only: bool = False,
) -> T:
    """Sign in (for LearningProvider.Read only when `read_only`) and run `work`; every failure a
    CliError that says what to do."""
    from azure.core.exceptions import ClientAuthenticationError

    for label, value in (("--tenant", args.tenant), ("--client-id", args.client_id)):
        if value is not None and (not value.strip() or len(value) > 200 or not value.isprintable()):
            raise CliError(f"{label} must be an id or domain of at most 200 printable characters")
    try:
        credential = backends.delegated_credential(
            browser=args.browser,
            tenant_id=args.tenant or env.get(OPERATOR_TENANT_ID) or None,
            client_id=args.client_id or env.get(OPERATOR_CLIENT_ID) or None,
        )
        return asyncio.run(work(backends.providers(base_url, credential, read_only=read_only)))
    except ValueError as exc:  # azure-identity: a tenant or client id it cannot take
        raise CliError(
            f"the sign-in could not start ({type(exc).__name__}): check --tenant and --client-id"
        ) from None
    except ClientAuthenticationError as exc:  # CredentialUnavailableError (no browser) is one too
        raise CliError(f"the sign-in failed ({sign_in_failure(exc)}); {WHO}") from None
    except GraphUnavailable as exc:
        raise CliError(f"Graph could not be reached: {exc}") from None
    except GraphError as exc:
        raise CliError(safe(provider_refusal(exc))) from None


def sign_in_failure(exc: Exception) -> str:
    """The failure's type and the identity platform's AADSTS code when it gave one (its message is not
    repeated: it may quote the account that signed in)."""
    code = re.search(r"\bAADSTS\d{4,6}\b", str(exc))
    return f"{type(exc).__name__}, {code.group(0)}" if code else type(exc).__name__


def provider_refusal(exc: GraphError) -> str:
    """Graph's refusal of a provider call, and what to do about it."""
    said = f"Graph {exc.status} {exc.code}: {exc.message[:300].rstrip('.')}"
    if exc.status == 401:
        return f"{said}; the sign-in was not accepted: sign in again ({WHO})"
    if exc.status == 403:
        if "service plan" in exc.message.lower():
            return (
                f"{said}; the tenant needs a plan that includes Viva Learning (a Microsoft 365 administrator)"
            )
        return f"{said}; {WHO}"
    if exc.status == 404:
        return (
            f"{said}; no such provider in this tenant: check {PROVIDER_REGISTRATION_ID}, or "
            "`provider register`"
        )
    if exc.status == 400:
        return f"{said}; Graph refused the request as written"
    return f"{said}; try again later"


def _print(args: argparse.Namespace, record: ProviderRecord, headline: str) -> None:
    if args.json:
        print(json.dumps(provider_json(record), indent=2))
        return
    if headline:
        print(headline)
    for name, value in provider_json(record).items():
        shown = str(value).lower() if isinstance(value, bool) else value
        print(safe(f"{name}: {shown}"))


def safe(text: str) -> str:
    """Text any terminal takes: what Graph's JSON may carry (a lone surrogate) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def provider_json(record: ProviderRecord) -> dict[str, Any]:
    """The provider as Graph names its properties."""
    return {
        "id": record.id,
        "displayName": record.display_name,
        "isCourseActivitySyncEnabled": record.is_course_activity_sync_enabled,
        "loginWebUrl": record.login_web_url,
        **record.logos,
    }


def _settings_document(path: Path) -> dict[str, Any]:
    """The settings file as JSON (a missing one: a new document), or a CliError naming it."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"IsEncrypted": False, "Values": {}}
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the settings file {path}: {type(exc).__name__}") from None
    try:
        document = json.loads(raw) if raw.strip() else {"IsEncrypted": False, "Values": {}}
    except (ValueError, RecursionError):
        raise CliError(f"{path} is not JSON: the registration id could not be written into it") from None
    if not isinstance(document, dict) or not isinstance(document.setdefault("Values", {}), dict):
        raise CliError(f'{path}: "Values" is not an object of settings')
    return document


def _say(args: argparse.Namespace) -> Callable[[str], None]:
    """Where a command's status lines go: stdout, or stderr with --json (stdout is then one JSON
    document, for pipelines)."""
    stream = sys.stderr if getattr(args, "json", False) else sys.stdout
    return lambda line: print(line, file=stream)


def _save_registration_id(path: Path, registration_id: str, say: Callable[[str], None] = print) -> None:
    document = _settings_document(path)
    document["Values"][PROVIDER_REGISTRATION_ID] = registration_id
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(
            f"registered {registration_id}, but {path} could not be written ({exc.strerror}): set "
            f"{PROVIDER_REGISTRATION_ID}={registration_id} yourself"
        ) from None
    say(f"{PROVIDER_REGISTRATION_ID} written to {path}")
    azd = backends.azd()
    if azd is None:
        say("azd is not installed: the azd environment was left as it is")
        return
    code, said = backends.run([azd, "env", "set", PROVIDER_REGISTRATION_ID, registration_id])
    if code == 0:
        say(f"{PROVIDER_REGISTRATION_ID} set in the azd environment (`azd provision` applies it)")
    else:
        say(
            f"azd env set failed ({said[:200] or f'exit {code}'}): run `azd env set "
            f"{PROVIDER_REGISTRATION_ID} {registration_id}` in the project's azd environment"
        )
