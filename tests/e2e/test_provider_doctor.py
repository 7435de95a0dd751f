"""The provider commands and `doctor` against the local stack (Azurite, the Graph sandbox, dev hosts).

`provider` signs in with the real DeviceCodeCredential (azure-identity and MSAL run the device code
flow); the identity platform's endpoints are answered in process (tests/identity_platform.py) and the
test plays the user who enters the code. The logos' reachability is the one stand-in: the test has no
internet, so their GET answers 200 for the test's URLs (their https/public checks run as they are)."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import httpx

from shared.cli import backends
from tests.cli_harness import Outcome, run_cli
from tests.e2e.stack import PROVIDER_ID, Stack, cli, create_user
from tests.identity_platform import VERIFICATION_URI, IdentityPlatform, ManagedIdentityEndpoint

LOGOS = [f"https://cdn.contoso.example/academy/logo-{n}.png" for n in range(4)]
DELEGATED = {"scp": "LearningProvider.ReadWrite", "roles": []}
CANARY = "ada.lovelace@contoso.example"


@contextlib.contextmanager
def user_at_the_browser(platform: IdentityPlatform) -> Iterator[None]:
    """The operator who, once the command shows a code, enters it at the verification page."""
    done = threading.Event()

    def enter_codes() -> None:
        while not done.wait(0.05):
            for code in list(platform.user_codes.values()):
                platform.enter(code)

    thread = threading.Thread(target=enter_codes, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


def signed_in(platform: IdentityPlatform, settings: Path, *argv: str) -> Outcome:
    fetched: list[str] = []

    def fetch_status(url: str, hop: object, redirects: int = 5) -> int:
        fetched.append(url)
        return 200 if url in LOGOS else 404

    with (
        mock.patch.object(backends, "identity_transport", platform),
        mock.patch.object(backends, "fetch_status", fetch_status),
        mock.patch.object(backends, "addresses", return_value=[]),  # cdn.contoso.example: not resolved
        mock.patch.object(backends, "azd", return_value=None),
        user_at_the_browser(platform),
    ):
        return run_cli(["--settings", str(settings), *argv])


def sandbox_provider(stack: Stack, registration_id: str) -> dict[str, object]:
    answer = httpx.get(
        f"{stack.sandbox}/v1.0/employeeExperience/learningProviders/{registration_id}", timeout=10
    )
    answer.raise_for_status()
    document: dict[str, object] = answer.json()
    return document


def test_register_a_provider_and_enable_its_sync_through_the_cli(stack: Stack, tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    shutil.copy(stack.settings_file, settings)  # the stack's own file keeps its provider
    platform = IdentityPlatform(DELEGATED)

    name = f"Contoso Academy {uuid.uuid4().hex[:6]}"
    registered = signed_in(platform, settings, "provider", "register", "--name", name, "--logos", *LOGOS)
    assert registered.code == 0, registered
    # The device code flow ran: the command showed the code the platform issued, the user entered it.
    (user_code,) = platform.user_codes.values()
    assert f"open {VERIFICATION_URI} and enter the code {user_code}" in registered.err
    assert any(path.endswith("/oauth2/v2.0/token") for _, path in platform.requests)

    registration_id = json.loads(settings.read_text(encoding="utf-8"))["Values"][
        "BRIDGE_PROVIDER_REGISTRATION_ID"
    ]
    assert registration_id != PROVIDER_ID
    assert f"registered learning provider {registration_id}" in registered.out
    created = sandbox_provider(stack, registration_id)
    assert created["displayName"] == name
    assert [created[k] for k in ("squareLogoWebUrlForDarkTheme", "squareLogoWebUrlForLightTheme")] == LOGOS[
        :2
    ]
    assert created["isCourseActivitySyncEnabled"] is False

    enabled = signed_in(platform, settings, "provider", "enable-sync")
    assert enabled.code == 0, enabled
    assert sandbox_provider(stack, registration_id)["isCourseActivitySyncEnabled"] is True

    shown = signed_in(platform, settings, "provider", "show", "--json")
    assert shown.code == 0, shown
    assert json.loads(shown.out)["isCourseActivitySyncEnabled"] is True
    # One sign-in per command (azure-identity keeps the token in memory only: nothing is stored).
    assert len(platform.user_codes) == 3


def test_the_sandbox_refuses_an_application_token_for_provider_calls(stack: Stack, tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    shutil.copy(stack.settings_file, settings)
    application = IdentityPlatform({"roles": ["LearningSelfInitiatedCourse.ReadWrite.All"]})
    refused = signed_in(application, settings, "provider", "show")
    assert refused.code == 2
    assert "Graph 403 Forbidden" in refused.error_lines[0]
    assert "delegated only" in refused.error_lines[0]


def test_register_refuses_a_logo_that_does_not_answer(stack: Stack, tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    shutil.copy(stack.settings_file, settings)
    platform = IdentityPlatform(DELEGATED)
    missing = "https://cdn.contoso.example/academy/missing.png"
    refused = signed_in(
        platform, settings, "provider", "register", "--name", "C", "--logos", *LOGOS[:3], missing
    )
    assert refused.code == 2
    assert "answered HTTP 404" in refused.error_lines[0]
    assert platform.requests == []  # refused before the sign-in


# ---- doctor ---------------------------------------------------------------------------------------


def doctor(
    stack: Stack, *argv: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, dict[str, str]]]:
    done = cli(stack, "doctor", "--json", *argv, env=env)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    return done.returncode, {check["name"]: check for check in report["checks"]}


def failures(checks: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {name: check for name, check in checks.items() if check["status"] == "failed"}


def tenant(stack: Stack, **settings: object) -> None:
    httpx.post(f"{stack.sandbox}/_sandbox/tenant", json=settings, timeout=10).raise_for_status()


def test_doctor_on_the_healthy_local_stack_exits_0(stack: Stack) -> None:
    code, checks = doctor(stack, "--canary", CANARY)
    assert code == 0, checks
    assert failures(checks) == {}
    assert checks["probe"]["status"] == "ok"
    assert checks["identity"]["status"] == "skipped"  # anonymous, the local sandbox
    text = cli(stack, "doctor", "--canary", CANARY)
    assert text.returncode == 0, text.stderr
    assert text.stdout.rstrip().endswith("healthy")
    assert CANARY not in text.stdout


def test_doctor_names_a_source_without_its_secret_and_the_setting_to_set(stack: Stack) -> None:
    code, checks = doctor(stack, "--canary", CANARY, env={"BRIDGE_SOURCE_PARTNER_SECRET": ""})
    assert code == 1
    assert list(failures(checks)) == ["source partner"]
    assert "set BRIDGE_SOURCE_PARTNER_SECRET" in checks["source partner"]["fix"]


def test_doctor_names_sync_off_and_the_command_that_turns_it_on(stack: Stack) -> None:
    tenant(stack, courseActivitySync={PROVIDER_ID: False})
    try:
        code, checks = doctor(stack, "--canary", CANARY)
    finally:
        tenant(stack, courseActivitySync={PROVIDER_ID: True})
    assert code == 1
    assert "course activity sync is off" in checks["provider"]["detail"]
    assert "provider enable-sync" in checks["provider"]["fix"]
    # The probe meets Graph's own answer for it.
    assert "providerNotEnabled" in checks["probe"]["detail"]


def test_doctor_names_an_unlicensed_canary(stack: Stack) -> None:
    email = f"canary-{uuid.uuid4().hex[:8]}@contoso.example"
    user_id = create_user(stack, email, "Canary")
    tenant(stack, licences={user_id: False})
    code, checks = doctor(stack, "--canary", email)
    assert code == 1
    assert list(failures(checks)) == ["probe"]
    assert "learnerNotLicensed" in checks["probe"]["detail"]
    assert "licence that includes Viva Learning" in checks["probe"]["fix"]

    tenant(stack, licences={user_id: True})
    code, checks = doctor(stack, "--canary", email)
    assert code == 0, checks


def test_doctor_signed_in_checks_the_provider_with_the_operators_delegated_token(
    stack: Stack, tmp_path: Path
) -> None:
    settings = tmp_path / "local.settings.json"
    shutil.copy(stack.settings_file, settings)
    platform = IdentityPlatform(DELEGATED)
    outcome = signed_in(platform, settings, "doctor", "--sign-in", "--canary", CANARY, "--json")
    assert outcome.code == 0, outcome
    checks = {check["name"]: check for check in json.loads(outcome.out)["checks"]}
    assert checks["provider"]["status"] == "ok"
    assert len(platform.user_codes) == 1  # the device code flow ran once

    application = IdentityPlatform({"roles": ["LearningSelfInitiatedCourse.ReadWrite.All"]})
    refused = signed_in(application, settings, "doctor", "--sign-in", "--json")
    assert refused.code == 1
    provider = {check["name"]: check for check in json.loads(refused.out)["checks"]}["provider"]
    assert provider["status"] == "failed"
    assert "Graph 403" in provider["detail"]
    assert "delegated only" in provider["fix"]


# ---- doctor with the app's identity (a managed identity endpoint, as the Functions host gives one) ----


def with_identity(identity: ManagedIdentityEndpoint) -> dict[str, str]:
    """doctor as the app runs it: its Graph token from the managed identity endpoint, not anonymous."""
    return {**identity.environment(), "BRIDGE_GRAPH_AUTH": "managedIdentity"}


def test_doctor_names_a_missing_app_role_from_the_token_and_graphs_refusal_of_the_probe(stack: Stack) -> None:
    """The identity's token lacks LearningSelfInitiatedCourse.ReadWrite.All: doctor reads that from the
    token's `roles` and names the grant; content still reads (LearningContent.Read.All), and the probe
    write meets Graph's 403 (the sandbox refuses a write whose token lacks the role)."""
    with ManagedIdentityEndpoint(["User.Read.All", "LearningContent.Read.All"]) as identity:
        code, checks = doctor(stack, "--canary", CANARY, env=with_identity(identity))
    assert code == 1
    assert sorted(failures(checks)) == ["identity", "probe"]
    assert "lacks the app role(s) LearningSelfInitiatedCourse.ReadWrite.All" in checks["identity"]["detail"]
    assert "BRIDGE_GRANT_GRAPH_PERMISSIONS" in checks["identity"]["fix"]
    assert checks["content"]["status"] == "ok"  # read with the identity's token
    assert "appRoleMissing (Graph 403)" in checks["probe"]["detail"]  # the error page's answer, recognised
    assert "LearningSelfInitiatedCourse.ReadWrite.All" in checks["probe"]["fix"]
    assert "BRIDGE_GRANT_GRAPH_PERMISSIONS" in checks["probe"]["fix"]
    assert identity.asked  # the token came from the endpoint
    assert all(asked["resource"].startswith("https://graph.microsoft.com") for asked in identity.asked)

    granted = [
        "User.Read.All",
        "LearningContent.Read.All",
        "LearningSelfInitiatedCourse.ReadWrite.All",
        "LearningAssignedCourse.ReadWrite.All",  # the local stack writes assignments
        "LearningContent.ReadWrite.All",  # and has sources that register content
    ]
    with ManagedIdentityEndpoint(granted) as identity:
        code, checks = doctor(stack, "--canary", CANARY, env=with_identity(identity))
    assert code == 0, failures(checks)
    assert checks["identity"]["status"] == "ok"
    assert checks["probe"]["status"] == "ok"
