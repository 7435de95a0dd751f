"""`doctor`: everything between a deployment and a written record, checked in order, each failure
with its fix.

1. settings: what the app cannot work without (shared.config.settings);
2. storage: the state tables and the events queue answer;
3. identity: the app's identity gets a Graph token, and its `roles` claim holds the app roles the
   bridge needs (skipped with `BRIDGE_GRAPH_AUTH=anonymous`: the local sandbox takes no token);
4. provider: the provider exists and its course activity sync is on (delegated: with `--sign-in` or
   `--browser`; against the local sandbox without a token);
5. content: the provider's learning content can be read (`--course`: that course);
6. probe: a course activity created and deleted for the canary learner (`--canary UPN`);
7. sources: each source's definition, options and secret.

Exit 0 when nothing failed (skipped checks say how to run them), 1 when something failed, 2 for bad
arguments. Nothing personal is printed: the canary is "the canary".
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from shared.cli import backends
from shared.cli.commands import environment
from shared.cli.errors import CliError
from shared.cli.provider import (
    OPERATOR_CLIENT_ID,
    OPERATOR_TENANT_ID,
    WHO,
    provider_refusal,
    safe,
    sign_in_failure,
)
from shared.config.exceptions import ConfigurationError
from shared.config.settings import (
    GRAPH_AUTH,
    PROVIDER_REGISTRATION_ID,
    STORAGE,
    GraphAuth,
    Settings,
    load_settings,
)
from shared.events.model import CourseStatus
from shared.events.names import EVENTS_QUEUE
from shared.graph.errors import LEARNER_NOT_LICENSED, GraphError, GraphUnavailable
from shared.graph.gateway import ActivityWrite

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
#: The app roles the bridge's identity needs (docs/deploy/index.md, step 3): role -> what for. Content
#: reads are covered by LearningContent.ReadWrite.All too.
NEEDED_ROLES = {
    "LearningSelfInitiatedCourse.ReadWrite.All": "writing course activities",
    "User.Read.All": "finding learners",
    "LearningContent.Read.All": "finding courses",
}
#: Granted with assignments on (infra/modules/graph-permissions.bicep `assignmentRoles`).
ASSIGNMENT_ROLE = {"LearningAssignedCourse.ReadWrite.All": "writing assigned courses"}
_IMPLIED = {"LearningContent.ReadWrite.All": "LearningContent.Read.All"}


#: Granted with enableContentWrites (infra/modules/graph-permissions.bicep); a source with
#: `registerContent` registers unknown courses with it (shared.sources.base).
CONTENT_WRITE_ROLE = {"LearningContent.ReadWrite.All": "registering courses (a source's registerContent)"}


def needed_roles(settings: Settings) -> dict[str, str]:
    """The app roles this deployment's identity needs: the assignment role too when assignments are on
    (without it every learningAssignment write is refused), the content write role when a source
    registers content (without it every new course's events are refused)."""
    from shared.sources.registry import build_isolated_sources

    catalog = build_isolated_sources(settings.sources, settings.source_problems)
    options = [source.options for source in catalog.available.values()]
    options += [aside.options for aside in catalog.unavailable.values() if aside.options is not None]
    registers = any(o.register_content for o in options)
    return {
        **NEEDED_ROLES,
        **(ASSIGNMENT_ROLE if settings.assignments_enabled else {}),
        **(CONTENT_WRITE_ROLE if registers else {}),
    }


GRANT = (
    "grant it to the app's managed identity: `azd provision` with BRIDGE_GRANT_GRAPH_PERMISSIONS true, "
    "or a Privileged Role Administrator as in docs/deploy/index.md, step 3"
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None


def add_parser(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="check, in order, everything between the deployment and a written record, with fixes",
        description="Settings, storage, the identity's Graph token and app roles, the provider and its "
        "sync (delegated: --sign-in), content, a probe write and delete for a canary learner (--canary), "
        "each source's configuration and secret. Exit 0 when healthy, 1 when a check failed.",
    )
    doctor.add_argument("--canary", metavar="UPN", help="a licensed test learner for the probe write")
    doctor.add_argument("--course", metavar="ID", help="a course's external id to read and probe with")
    doctor.add_argument(
        "--sign-in", action="store_true", help="sign in as yourself (device code) to check the provider"
    )
    doctor.add_argument("--browser", action="store_true", help="sign in with the system browser")
    doctor.add_argument(
        "--tenant", help=f"the Entra tenant id for the sign-in (default: {OPERATOR_TENANT_ID})"
    )
    doctor.add_argument("--client-id", help=f"the public client app to sign in with ({OPERATOR_CLIENT_ID})")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(run=doctor_command)


def doctor_command(args: argparse.Namespace) -> int:
    for name, value in (
        ("--canary", args.canary),
        ("--course", args.course),
        ("--tenant", args.tenant),
        ("--client-id", args.client_id),
    ):
        if value is not None and (not value.strip() or len(value) > 400 or not value.isprintable()):
            raise CliError(f"{name} must be a non-empty value of at most 400 printable characters")
    env = environment(args.settings)
    checks = asyncio.run(_checks(args, env))
    failed = [c for c in checks if c.status == FAILED]
    if args.json:
        print(json.dumps({"healthy": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        for check in checks:
            print(safe(f"{check.status.upper():8} {check.name}: {check.detail}"))
            if check.fix:
                print(safe(f"         fix: {check.fix}"))
        print(
            "healthy" if not failed else f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}"
        )
    return 1 if failed else 0


async def _checks(args: argparse.Namespace, env: dict[str, str]) -> list[Check]:
    try:
        settings = load_settings(env)
    except ConfigurationError as exc:
        problems = "; ".join(exc.problems) if hasattr(exc, "problems") else str(exc)
        names = ("storage", "identity", "provider", "content", "probe", "sources")
        return [
            Check(
                "settings", FAILED, problems, "set what it names (local.settings.json, or the app settings)"
            ),
            *[Check(name, SKIPPED, "needs the settings") for name in names],
        ]
    checks = [
        Check(
            "settings", OK, f"provider {settings.provider_registration_id}, Graph {settings.graph_base_url}"
        )
    ]
    checks.append(await _storage(settings))
    checks.append(_identity(settings))
    checks.append(await _provider(args, env, settings))
    content_check, content_id = await _content(args, settings)
    checks.append(content_check)
    checks.append(await _probe(args, settings, content_id))
    checks.extend(_sources(settings))
    return checks


async def _storage(settings: Settings) -> Check:
    from azure.core.exceptions import AzureError

    from shared.storage.queues import QueueUnavailable

    fix = (
        f"check {STORAGE} (locally: `make run` starts Azurite); with identity-based storage your sign-in "
        "(az/azd) needs Storage Table and Queue Data Contributor on the account"
    )
    store = backends.state_store(settings)
    try:
        await store.delivery("doctor", "probe")
        backlog = backends.queues(settings).backlog(EVENTS_QUEUE)
    except (AzureError, QueueUnavailable, OSError) as exc:
        return Check("storage", FAILED, f"storage did not answer ({type(exc).__name__})", fix)
    finally:
        await store.close()
    return Check("storage", OK, f"state tables and queue answer; {backlog} event(s) waiting")


def token_claims(token: str) -> dict[str, Any]:
    """An access token's claims (not verified: only read)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _identity(settings: Settings) -> Check:
    if settings.graph_auth is GraphAuth.ANONYMOUS:
        return Check("identity", SKIPPED, f"{GRAPH_AUTH}=anonymous: the local sandbox takes no token")
    from azure.core.exceptions import AzureError

    try:
        token = backends.app_credential(settings).get_token(GRAPH_SCOPE).token
    except (AzureError, ValueError, OSError) as exc:
        return Check(
            "identity",
            FAILED,
            f"the app's managed identity got no Graph token ({type(exc).__name__})",
            WHERE_THE_IDENTITY_IS,
        )
    roles = token_claims(token).get("roles") or []
    held = {str(r) for r in roles} if isinstance(roles, list) else set()
    held |= {_IMPLIED[r] for r in held if r in _IMPLIED}
    needed = needed_roles(settings)
    missing = [role for role in needed if role not in held]
    if missing:
        why = ", ".join(f"{role} ({needed[role]})" for role in missing)
        return Check("identity", FAILED, f"the token lacks the app role(s) {why}", GRANT)
    return Check("identity", OK, f"Graph token with roles {', '.join(sorted(held))}")


async def _provider(args: argparse.Namespace, env: dict[str, str], settings: Settings) -> Check:
    signed_in = args.sign_in or args.browser
    if not signed_in and settings.graph_auth is not GraphAuth.ANONYMOUS:
        return Check(
            "provider",
            SKIPPED,
            "reading the provider is delegated only",
            "run doctor with --sign-in (a device code) or --browser to check it",
        )
    from azure.core.exceptions import ClientAuthenticationError

    registration_id = settings.provider_registration_id
    try:
        credential = (
            backends.delegated_credential(
                browser=args.browser,
                tenant_id=args.tenant or env.get(OPERATOR_TENANT_ID) or None,
                client_id=args.client_id or env.get(OPERATOR_CLIENT_ID) or None,
            )
            if signed_in
            else None
        )
        record = await backends.providers(settings.graph_base_url, credential, read_only=True).get(
            registration_id
        )
    except (ClientAuthenticationError, ValueError) as exc:
        return Check(
            "provider", FAILED, f"the sign-in failed ({sign_in_failure(exc)})", f"check --tenant; {WHO}"
        )
    except GraphUnavailable as exc:
        return Check("provider", FAILED, f"Graph could not be reached ({exc})", "check BRIDGE_GRAPH_BASE_URL")
    except GraphError as exc:
        return Check("provider", FAILED, f"Graph {exc.status} {exc.code}", provider_refusal(exc))
    if record is None:
        return Check(
            "provider",
            FAILED,
            f"no learning provider {registration_id} in this tenant",
            f"`python -m shared.cli provider register …` (it writes {PROVIDER_REGISTRATION_ID}), "
            "or fix the setting",
        )
    if not record.is_course_activity_sync_enabled:
        return Check(
            "provider",
            FAILED,
            f"course activity sync is off for {record.display_name!r}: every write is refused",
            "`python -m shared.cli provider enable-sync`, then `replay --reason providerNotEnabled`",
        )
    return Check("provider", OK, f"{record.display_name!r} exists, course activity sync is on")


#: The content and probe checks' answer when the app's identity gets no token (a workstation).
WHERE_THE_IDENTITY_IS = (
    "run doctor where the identity is available (the Function App's console, or a VM or Cloud Shell with "
    "it); check AZURE_CLIENT_ID names the app's user-assigned identity"
)


def _no_token(name: str, exc: Exception) -> Check:
    return Check(
        name, FAILED, f"the app's identity got no Graph token ({type(exc).__name__})", WHERE_THE_IDENTITY_IS
    )


async def _content(args: argparse.Namespace, settings: Settings) -> tuple[Check, str | None]:
    from azure.core.exceptions import AzureError

    graph = backends.graph(settings)
    try:
        content_id = await (graph.find_content_id(args.course) if args.course else graph.first_content_id())
    except AzureError as exc:  # the credential's failure (CredentialUnavailableError...)
        return _no_token("content", exc), None
    except GraphUnavailable as exc:
        return Check(
            "content", FAILED, f"Graph could not be reached ({exc})", "check BRIDGE_GRAPH_BASE_URL"
        ), None
    except GraphError as exc:
        fix = f"the identity needs LearningContent.Read.All: {GRANT}" if exc.status in (401, 403) else None
        return Check("content", FAILED, f"Graph {exc.status} {exc.code}: {exc.message[:200]}", fix), None
    if content_id is None:
        what = (
            "no learning content with that external id"
            if args.course
            else "the provider has no learning content"
        )
        return Check(
            "content",
            FAILED,
            what,
            "`python -m shared.cli catalog push FILE` (or sync the catalog through Viva Learning)",
        ), None
    return Check("content", OK, "learning content is readable"), content_id


async def _probe(args: argparse.Namespace, settings: Settings, content_id: str | None) -> Check:
    from azure.core.exceptions import AzureError

    from shared.delivery.upsert import FIXES

    if args.canary is None:
        return Check("probe", SKIPPED, "no canary learner", "name a licensed test learner with --canary UPN")
    if content_id is None:
        return Check("probe", SKIPPED, "needs readable content (above)")
    graph = backends.graph(settings)
    external_id = f"bridge-doctor-probe-{uuid.uuid4()}"
    try:
        learner = await graph.find_user_id_by_upn(args.canary)
        if learner is None:
            return Check(
                "probe", FAILED, "the canary is not a user in this tenant", "check the UPN given to --canary"
            )
        write = ActivityWrite(
            status=CourseStatus.IN_PROGRESS, completion_percentage=0, started_at=datetime.now(UTC)
        )
        record = await graph.create_activity(external_id, learner, content_id, write)
    except AzureError as exc:  # the credential's failure (CredentialUnavailableError...)
        return _no_token("probe", exc)
    except GraphUnavailable as exc:
        return Check("probe", FAILED, f"Graph could not be reached ({exc})", "check BRIDGE_GRAPH_BASE_URL")
    except GraphError as exc:
        reason = exc.documented_reason
        if reason == LEARNER_NOT_LICENSED:
            fix = "assign the canary a licence that includes Viva Learning (or name a licensed canary)"
        elif reason is not None:
            fix = FIXES[reason]
        elif exc.status in (401, 403):
            fix = f"the identity needs LearningSelfInitiatedCourse.ReadWrite.All and User.Read.All: {GRANT}"
        else:
            fix = None
        # A documented answer is named by its reason (Graph's message is the same for every learner);
        # another one by its status and code only (its message may name the canary's object id).
        label = f"{reason} (Graph {exc.status})" if reason else f"Graph {exc.status} {exc.code}"
        return Check("probe", FAILED, f"the probe write was refused: {label}", fix)
    try:
        await graph.delete_activity(record.id)
    except (GraphError, GraphUnavailable, AzureError) as exc:
        # Named by its external id only: Graph's record id may begin with the canary's object id.
        return Check(
            "probe",
            FAILED,
            f"the probe record was written but not deleted ({type(exc).__name__})",
            f"delete the course activity whose externalCourseActivityId is {external_id} by hand (GET "
            f"learningProviders/{{id}}/learningCourseActivities(externalcourseActivityId='{external_id}') "
            "gives its id, then DELETE learningCourseActivities/{id})",
        )
    return Check("probe", OK, "a course activity was written and deleted for the canary")


def _sources(settings: Settings) -> list[Check]:
    from shared.config.settings import SOURCES, secret_setting_name
    from shared.sources.registry import build_isolated_sources

    if settings.sources_problem is not None:
        return [Check("sources", FAILED, settings.sources_problem, f"fix {SOURCES}")]
    catalog = build_isolated_sources(settings.sources, settings.source_problems)
    checks: list[Check] = []
    for name in sorted({*settings.sources, *settings.source_problems}):
        if name in catalog.available:
            checks.append(Check(f"source {name}", OK, "configured, with its secret"))
            continue
        unavailable = catalog.unavailable[name]
        if unavailable.setting == secret_setting_name(name):
            fix = (
                f"set {unavailable.setting} (in Azure a Key Vault secret; see docs/connect/index.md, "
                '"Rotating a source\'s secret")'
            )
        else:
            fix = f"fix the source's definition in {unavailable.setting}"
        checks.append(Check(f"source {name}", FAILED, unavailable.reason, fix))
    return checks
