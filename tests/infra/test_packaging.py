"""What `azd deploy` ships: azd honours .funcignore instead of its defaults, so it must list every local
artifact and development folder, and nothing the app needs at run time."""

from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    """Whether a top-level path (or anything under it) is left out of the package."""
    first = path.split("/", 1)[0]
    return any(fnmatch(first, pattern) or fnmatch(path, pattern) for pattern in patterns())


def gitignored() -> list[str]:
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("pattern", gitignored())
def test_everything_git_ignores_is_left_out_of_the_package(pattern: str) -> None:
    example = pattern.replace("*", "x")
    assert ignored(example), f".funcignore does not cover {pattern!r} (from .gitignore)"


@pytest.mark.parametrize(
    "path",
    [
        ".venv-checkov",
        ".hypothesis",
        "__azurite_db_queue__.json",
        "__blobstorage__",
        "__queuestorage__",
        ".local/azurite",
        ".azure/prod/.env",
        ".github/workflows/ci.yml",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        "shared/__pycache__/runtime.cpython-311.pyc",
        "tests/unit",
        "devtools/graph_sandbox",
        "node_modules/azurite",
        "infra/main.bicep",
        "local.settings.json",
        "requirements-dev.txt",
        "requirements-infra.txt",
        "requirements.in",
        "requirements-dev.in",
        "requirements-infra.in",
        "openapi/bridge.openapi.json",
        "docs/index.md",
        "mkdocs.yml",
        "site/index.html",
    ],
)
def test_local_and_development_artifacts_are_left_out(path: str) -> None:
    assert ignored(path) or any(fnmatch(Path(path).name, p) for p in patterns()), path


@pytest.mark.parametrize("path", ["function_app.py", "host.json", "requirements.txt", "shared/runtime.py"])
def test_what_the_app_runs_is_shipped(path: str) -> None:
    assert not ignored(path), f".funcignore would leave out {path}"


def test_a_ci_workflow_compiles_and_lints_the_bicep_where_azure_tooling_exists() -> None:
    """The offline checks stand in for the compiler here; with Azure tooling the real one runs too."""
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert "make test" in workflow
    assert "bicep build --file infra/main.bicep" in workflow
    assert "bicep lint --file infra/main.bicep" in workflow
    assert "azd provision --preview" in workflow
    assert "github" not in (ROOT / ".ci" / "run").read_text(encoding="utf-8"), ".ci/run needs no workflow"
