"""`provider` and `doctor`, in process over the unit fakes (tests/cli_harness.py): the operator's
delegated sign-in and the app's identity are credentials whose tokens carry the claims Graph's would."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError

from shared.graph.errors import GraphError
from shared.graph.msgraph_gateway import ProviderRecord
from tests.cli_harness import (
    PROVIDER,
    SETTINGS,
    Backends,
    Outcome,
    TokenCredential,
    fake_backends,
    run_cli,
    write_settings,
)

LOGOS = [f"https://cdn.contoso.example/logo-{n}.png" for n in range(4)]
CANARY = "canary@contoso.example"
CANARY_ID = "0f1e2d3c-4b5a-4968-8778-695a4b3c2d1e"


def run(fakes: Backends, tmp_path: Path, *argv: str, values: dict[str, str] | None = None) -> Outcome:
    settings = write_settings(tmp_path, values)
    with fake_backends(fakes):
        return run_cli(["--settings", str(settings), *argv])


def saved_registration_id(tmp_path: Path) -> str | None:
    values = json.loads((tmp_path / "local.settings.json").read_text(encoding="utf-8"))["Values"]
    found = values.get("BRIDGE_PROVIDER_REGISTRATION_ID")
    return str(found) if found is not None else None


# ---- provider -------------------------------------------------------------------------------------


def test_register_creates_the_provider_and_writes_its_id_into_the_settings(tmp_path: Path) -> None:
    fakes = Backends()
    outcome = run(fakes, tmp_path, "provider", "register", "--name", "Contoso Academy", "--logos", *LOGOS)
    assert outcome.code == 0, outcome
    (record,) = fakes.providers.records.values()
    assert record.display_name == "Contoso Academy"
    assert list(record.logos.values()) == LOGOS
    assert saved_registration_id(tmp_path) == record.id
    values = json.loads((tmp_path / "local.settings.json").read_text(encoding="utf-8"))["Values"]
    assert values["BRIDGE_STORAGE"] == SETTINGS["BRIDGE_STORAGE"]  # the rest kept
    assert "azd is not installed" in outcome.out
    assert "provider enable-sync" in outcome.out
    # Signed in as the operator, asking for the delegated permission.
    assert fakes.operator.scopes == ["https://graph.microsoft.com/LearningProvider.ReadWrite"]


def test_register_sets_the_id_in_the_azd_environment_when_azd_is_installed(tmp_path: Path) -> None:
    fakes = Backends(azd="/usr/local/bin/azd")
    outcome = run(fakes, tmp_path, "provider", "register", "--name", "Contoso", "--logos", *LOGOS)
    assert outcome.code == 0, outcome
    (record,) = fakes.providers.records.values()
    assert fakes.programs == [
        ["/usr/local/bin/azd", "env", "set", "BRIDGE_PROVIDER_REGISTRATION_ID", record.id]
    ]
    assert "set in the azd environment" in outcome.out


def test_register_says_how_to_set_the_id_when_azd_fails(tmp_path: Path) -> None:
    fakes = Backends(azd="/usr/local/bin/azd", azd_status=1)
    outcome = run(fakes, tmp_path, "provider", "register", "--name", "Contoso", "--logos", *LOGOS)
    assert outcome.code == 0, outcome  # the provider exists and the settings file has its id
    (record,) = fakes.providers.records.values()
    assert f"azd env set BRIDGE_PROVIDER_REGISTRATION_ID {record.id}" in outcome.out


@pytest.mark.parametrize(
    ("logo", "said"),
    [
        ("http://cdn.contoso.example/logo.png", "is not a public https URL"),
        ("https://127.0.0.1/logo.png", "is not public"),
        ("https://10.1.2.3/logo.png", "is not public"),
        ("https://localhost/logo.png", "is not public"),
        ("https://user:pw@cdn.contoso.example/logo.png", "is not a public https URL"),
        ("not a url", "is not a public https URL"),
    ],
)
def test_register_refuses_a_logo_that_is_not_a_public_https_url_before_any_call(
    tmp_path: Path, logo: str, said: str
) -> None:
    fakes = Backends()
    outcome = run(fakes, tmp_path, "provider", "register", "--name", "C", "--logos", *LOGOS[:3], logo)
    assert outcome.code == 2
    assert said in outcome.error_lines[0]
    assert "longLogoWebUrlForLightTheme" in outcome.error_lines[0]
    assert fakes.providers.records == {}
    assert fakes.operator.scopes == []  # not even signed in


@pytest.mark.parametrize(
    ("answer", "said"),
    [(404, "answered HTTP 404"), (httpx.ConnectError("refused"), "did not answer (ConnectError)")],
)
def test_register_refuses_a_logo_that_does_not_answer(
    tmp_path: Path, answer: int | Exception, said: str
) -> None:
    fakes = Backends(logo_answer=answer)
    outcome = run(fakes, tmp_path, "provider", "register", "--name", "C", "--logos", *LOGOS)
    assert outcome.code == 2
    assert said in outcome.error_lines[0]
    assert fakes.providers.records == {}
    assert saved_registration_id(tmp_path) == PROVIDER  # unchanged


def test_enable_and_disable_sync_switch_the_configured_provider(tmp_path: Path) -> None:
    fakes = Backends()
    run(fakes, tmp_path, "provider", "register", "--name", "C", "--logos", *LOGOS)
    (registration_id,) = fakes.providers.records
    settings = tmp_path / "local.settings.json"
    with fake_backends(fakes):
        enabled = run_cli(["--settings", str(settings), "provider", "enable-sync"])
        assert enabled.code == 0, enabled
        assert fakes.providers.records[registration_id].is_course_activity_sync_enabled
        assert "replay --reason providerNotEnabled" in enabled.out
        shown = run_cli(["--settings", str(settings), "provider", "show", "--json"])
        assert json.loads(shown.out)["isCourseActivitySyncEnabled"] is True
        disabled = run_cli(["--settings", str(settings), "provider", "disable-sync"])
        assert disabled.code == 0, disabled
        assert "course activity sync is off" in disabled.out
    assert not fakes.providers.records[registration_id].is_course_activity_sync_enabled


def test_show_names_register_when_the_provider_is_unknown(tmp_path: Path) -> None:
    outcome = run(Backends(), tmp_path, "provider", "show")
    assert outcome.code == 2
    assert "provider register" in outcome.error_lines[0]


def test_a_refused_sign_in_says_who_can_make_provider_calls(tmp_path: Path) -> None:
    fakes = Backends(
        operator=TokenCredential({}, ClientAuthenticationError("AADSTS50020: user not in tenant"))
    )
    outcome = run(fakes, tmp_path, "provider", "enable-sync", "--id", PROVIDER)
    assert outcome.code == 2
    assert "the sign-in failed (ClientAuthenticationError, AADSTS50020)" in outcome.error_lines[0]
    assert "user not in tenant" not in outcome.error_lines[0]
    assert "Knowledge Administrator" in outcome.error_lines[0]


def test_an_application_token_refused_by_graph_says_to_sign_in_as_a_user(tmp_path: Path) -> None:
    fakes = Backends()
    fakes.providers.errors.append(
        GraphError(403, "Forbidden", "Application permissions are not supported for learning providers.")
    )
    outcome = run(fakes, tmp_path, "provider", "show")
    assert outcome.code == 2
    assert "Graph 403 Forbidden" in outcome.error_lines[0]
    assert "delegated only" in outcome.error_lines[0]


def test_provider_commands_need_a_registration_id(tmp_path: Path) -> None:
    values = {k: v for k, v in SETTINGS.items() if k != "BRIDGE_PROVIDER_REGISTRATION_ID"}
    outcome = run(Backends(), tmp_path, "provider", "enable-sync", values=values)
    assert outcome.code == 2
    assert "provider register" in outcome.error_lines[0]


def test_the_browser_sign_in_is_asked_for_with_browser(tmp_path: Path) -> None:
    from unittest import mock

    from shared.cli import backends

    fakes = Backends()
    asked: list[dict[str, object]] = []

    def credential(**options: object) -> TokenCredential:
        asked.append(options)
        return fakes.operator

    settings = write_settings(tmp_path)
    with fake_backends(fakes), mock.patch.object(backends, "delegated_credential", credential):
        run_cli(["--settings", str(settings), "provider", "show", "--browser", "--tenant", "contoso.example"])
    assert asked == [{"browser": True, "tenant_id": "contoso.example", "client_id": None}]


# ---- doctor ---------------------------------------------------------------------------------------


def healthy() -> Backends:
    """A tenant where everything works: the provider with sync on, content, a licensed canary."""
    from tests.cli_harness import FakeProviders

    fakes = Backends(providers=FakeProviders())
    fakes.providers.records[PROVIDER] = _provider(sync=True)
    fakes.graph.contents["course-101"] = "c-101"
    fakes.graph.users_by_upn[CANARY] = CANARY_ID
    return fakes


def _provider(*, sync: bool) -> ProviderRecord:
    return ProviderRecord(PROVIDER, "Contoso", sync, None, {})


def doctor(
    fakes: Backends, tmp_path: Path, *argv: str, values: dict[str, str] | None = None
) -> dict[str, dict[str, str]]:
    outcome = run(fakes, tmp_path, "doctor", "--canary", CANARY, "--json", *argv, values=values)
    assert outcome.code in (0, 1), outcome
    report = json.loads(outcome.out)
    assert report["healthy"] is (outcome.code == 0)
    return {check["name"]: check for check in report["checks"]}


def test_doctor_on_a_healthy_setup_exits_0_and_leaves_no_probe_record(tmp_path: Path) -> None:
    fakes = healthy()
    checks = doctor(fakes, tmp_path)
    assert [c["status"] for c in checks.values()] == ["ok", "ok", "skipped", "ok", "ok", "ok", "ok", "ok"]
    assert list(checks) == [
        "settings",
        "storage",
        "identity",
        "provider",
        "content",
        "probe",
        "source generic",
        "source lrs",
    ]
    assert "anonymous" in checks["identity"]["detail"]
    assert fakes.graph.activities == {}  # the probe deleted what it wrote
    assert "create_activity" in fakes.graph.calls


def test_doctor_prints_each_check_and_its_fix(tmp_path: Path) -> None:
    fakes = healthy()
    fakes.providers.records[PROVIDER] = _provider(sync=False)
    outcome = run(fakes, tmp_path, "doctor")
    assert outcome.code == 1
    assert "FAILED   provider: course activity sync is off" in outcome.out
    assert "fix: `python -m shared.cli provider enable-sync`" in outcome.out
    assert "SKIPPED  probe: no canary learner" in outcome.out
    assert "1 check(s) failed: provider" in outcome.out


@pytest.mark.parametrize(
    ("broken", "check", "detail", "fix"),
    [
        ("no secret", "source lrs", "BRIDGE_SOURCE_LRS_SECRET", "set BRIDGE_SOURCE_LRS_SECRET"),
        ("sync off", "provider", "course activity sync is off", "provider enable-sync"),
        ("no provider", "provider", "no learning provider", "provider register"),
        ("unlicensed canary", "probe", "learnerNotLicensed", "licence that includes Viva Learning"),
        ("unknown canary", "probe", "not a user in this tenant", "--canary"),
        ("no content", "content", "has no learning content", "catalog push"),
        ("storage down", "storage", "ServiceRequestError", "BRIDGE_STORAGE"),
        ("tenant without a plan", "probe", "tenantNotLicensed", "A Microsoft 365 administrator"),
    ],
)
def test_doctor_names_each_failure_and_its_fix(
    tmp_path: Path, broken: str, check: str, detail: str, fix: str
) -> None:
    fakes = healthy()
    values = dict(SETTINGS)
    if broken == "no secret":
        del values["BRIDGE_SOURCE_LRS_SECRET"]
    elif broken == "sync off":
        fakes.providers.records[PROVIDER] = _provider(sync=False)
    elif broken == "no provider":
        fakes.providers.records.clear()
    elif broken == "unlicensed canary":
        fakes.graph.unlicensed.add(CANARY_ID)
    elif broken == "unknown canary":
        fakes.graph.users_by_upn.clear()
    elif broken == "no content":
        fakes.graph.contents.clear()
    elif broken == "storage down":
        fakes.storage_down = True
    elif broken == "tenant without a plan":
        fakes.graph.service_plan = False
    checks = doctor(fakes, tmp_path, values=values)
    failed = {name: c for name, c in checks.items() if c["status"] == "failed"}
    assert list(failed) == [check], checks
    assert detail in failed[check]["detail"]
    assert fix in (failed[check]["fix"] or "")


def test_doctor_reads_the_app_roles_from_the_identitys_token(tmp_path: Path) -> None:
    values = {k: v for k, v in SETTINGS.items() if k not in ("BRIDGE_GRAPH_AUTH", "BRIDGE_GRAPH_BASE_URL")}
    fakes = healthy()
    fakes.identity = TokenCredential({"roles": ["LearningSelfInitiatedCourse.ReadWrite.All"]})
    checks = doctor(fakes, tmp_path, values=values)
    identity = checks["identity"]
    assert identity["status"] == "failed"
    assert "User.Read.All" in identity["detail"]
    assert "LearningContent.Read.All" in identity["detail"]
    assert "LearningSelfInitiatedCourse" not in identity["detail"]
    assert "BRIDGE_GRANT_GRAPH_PERMISSIONS" in identity["fix"]
    # Reading the provider is delegated: without a sign-in it is skipped, saying how to run it.
    assert checks["provider"]["status"] == "skipped"
    assert "--sign-in" in checks["provider"]["fix"]

    fakes.identity = TokenCredential(
        {
            "roles": [
                "LearningSelfInitiatedCourse.ReadWrite.All",
                "User.Read.All",
                "LearningContent.ReadWrite.All",
            ]
        }
    )
    checks = doctor(fakes, tmp_path, "--sign-in", values=values)
    assert checks["identity"]["status"] == "ok"
    assert checks["provider"]["status"] == "ok"
    assert fakes.operator.scopes  # signed in as the operator


def test_doctor_says_where_to_run_when_the_identity_gets_no_token(tmp_path: Path) -> None:
    from azure.identity import CredentialUnavailableError

    values = {k: v for k, v in SETTINGS.items() if k not in ("BRIDGE_GRAPH_AUTH", "BRIDGE_GRAPH_BASE_URL")}
    fakes = healthy()
    fakes.identity = TokenCredential({}, CredentialUnavailableError("no managed identity endpoint"))
    checks = doctor(fakes, tmp_path, values=values)
    assert checks["identity"]["status"] == "failed"
    assert "managed identity" in checks["identity"]["detail"]
    assert "run doctor where the identity is available" in checks["identity"]["fix"]


def test_doctor_with_unusable_settings_fails_the_first_check_and_skips_the_rest(tmp_path: Path) -> None:
    checks = doctor(Backends(), tmp_path, values={"BRIDGE_SOURCES": "{}"})
    assert checks["settings"]["status"] == "failed"
    assert "BRIDGE_STORAGE" in checks["settings"]["detail"]
    assert {c["status"] for name, c in checks.items() if name != "settings"} == {"skipped"}


@pytest.mark.parametrize("argv", [["--canary", ""], ["--course", " "], ["--canary", "a\nb"], ["--bogus"]])
def test_doctor_answers_bad_arguments_with_exit_2(tmp_path: Path, argv: list[str]) -> None:
    outcome = run(Backends(), tmp_path, "doctor", *argv)
    assert outcome.code == 2
    assert len(outcome.error_lines) == 1


def test_doctor_asks_for_the_roles_the_templates_grant_and_the_assignment_role_when_assignments_are_on(
    tmp_path: Path,
) -> None:
    """Bound to infra/modules/graph-permissions.bicep (what a deployment grants), not to a copy: a role
    added there and forgotten here, or the assignment role on a bridge that writes assignments, would
    pass `doctor` while Graph refuses every such write."""
    from shared.cli.doctor import ASSIGNMENT_ROLE, NEEDED_ROLES
    from tests.infra.bicep import parsed

    module = parsed("modules/graph-permissions.bicep")
    assert set(NEEDED_ROLES) == set(module["parameters"]["appRoles"]["default"])
    granted = module["variables"]["assignmentRoles"]["value"]["operator"]["operands"]["true_value"]
    assert set(ASSIGNMENT_ROLE) == set(granted)

    values = {k: v for k, v in SETTINGS.items() if k not in ("BRIDGE_GRAPH_AUTH", "BRIDGE_GRAPH_BASE_URL")}
    fakes = healthy()
    fakes.identity = TokenCredential({"roles": sorted(NEEDED_ROLES)})
    assert doctor(fakes, tmp_path, values=values)["identity"]["status"] == "ok"
    assigning = {**values, "BRIDGE_ASSIGNMENTS_ENABLED": "true"}
    identity = doctor(fakes, tmp_path, values=assigning)["identity"]
    assert identity["status"] == "failed"
    assert "LearningAssignedCourse.ReadWrite.All" in identity["detail"]


@pytest.mark.parametrize("address", ["10.0.0.5", "169.254.169.254", "::1", "fd00::1"])
def test_register_refuses_a_logo_whose_name_resolves_to_a_private_address(
    tmp_path: Path, address: str
) -> None:
    fakes = Backends()
    fakes.resolved["cdn.contoso.example"] = ["93.184.216.34", address]
    logos = [f"https://cdn.contoso.example/logo-{n}.png" for n in range(4)]
    outcome = run(fakes, tmp_path, "provider", "register", "--name", "C", "--logos", *logos)
    assert outcome.code == 2, outcome
    assert "is not public" in " ".join(outcome.error_lines)
    assert fakes.providers.records == {}


def test_register_takes_a_logo_whose_name_resolves_to_public_addresses(tmp_path: Path) -> None:
    fakes = Backends()
    fakes.resolved["cdn.contoso.example"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    logos = [f"https://cdn.contoso.example/logo-{n}.png" for n in range(4)]
    outcome = run(fakes, tmp_path, "provider", "register", "--name", "C", "--logos", *logos)
    assert outcome.code == 0, outcome
