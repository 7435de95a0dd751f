"""The Bicep compiler's deploy-time-constant rule (BCP120/177/178/182), checked offline on pycep's tree.

No Bicep compiler runs here; these tests show the stand-in catches the shapes the compiler refuses
(fixtures/), passes the shapes it accepts, and finds nothing in infra/.
"""

from pathlib import Path

import pytest

from devtools import infra_check
from devtools.deploy_time import check_file
from tests.infra.bicep import INFRA, bicep_files

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_no_template_needs_a_runtime_value_where_bicep_needs_a_constant(path: Path) -> None:
    findings = check_file(path)
    assert findings == [], "\n".join(str(f) for f in findings)


def test_a_loop_over_settings_holding_a_connection_string_is_refused() -> None:
    """The shape functionapp.bicep had before issue 10, which did not compile."""
    [finding] = check_file(FIXTURES / "runtime-for-source.bicep")
    assert finding.where == "variable fixedSettings"
    assert finding.what == "the for-expression's source"
    assert "appInsights.properties" in finding.because
    assert "through variable identitySettings" in finding.because


def test_names_scopes_and_loops_over_runtime_values_are_each_refused() -> None:
    found = {(f.where, f.what): f.because for f in check_file(FIXTURES / "runtime-names.bicep")}
    assert found == {
        ("resource byProperty", "name"): "account.properties",
        ("existing resource byReference", "name"): "reference()",
        ("existing resource byScope", "scope"): "child.outputs",
        ("module byModuleOutput", "name"): "child.outputs",
        ("variable keys", "the for-expression's source"): "listKeys()",
        ("variable secrets", "the for-expression's source"): "listSecrets()",
    }


def test_runtime_values_inside_objects_bodies_and_outputs_are_accepted() -> None:
    """What the quickstarts do: app settings as a union() of objects; loops over parameters only;
    a resource's id and name in names; runtime properties anywhere else."""
    assert check_file(FIXTURES / "constant-settings.bicep") == []


def test_the_message_names_the_place_the_value_and_the_rule() -> None:
    [finding] = check_file(FIXTURES / "runtime-for-source.bicep")
    message = str(finding)
    assert message.startswith("variable fixedSettings: the for-expression's source depends on")
    assert "BCP178" in message


def test_the_command_line_check_fails_on_a_refused_file_and_passes_a_good_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m devtools.infra_check FILE...`: how to check any file, e.g. one from git history."""
    assert infra_check.main([str(FIXTURES / "runtime-for-source.bicep")]) == 1
    assert "variable fixedSettings" in capsys.readouterr().err
    assert infra_check.main([str(FIXTURES / "constant-settings.bicep")]) == 0


def test_checkov_reads_a_copy_without_what_its_parser_cannot_and_with_the_same_lines() -> None:
    text = (INFRA / "modules" / "functionapp.bicep").read_text(encoding="utf-8")
    staged = infra_check.for_checkov(text)
    assert "toObject(" in text
    assert "toObject(" not in staged
    assert staged.count("\n") == text.count("\n"), "checkov's line numbers must point at the real file"
    assert "resource appSettings" in staged
