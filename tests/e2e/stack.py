"""The end-to-end tests' stack: the project's LocalStack with the test secret and the test seed."""

from pathlib import Path

from devtools.localstack.stack import PROVIDER_ID, LocalStack, wait_for
from tests.builders import TEST_SECRET

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "sandbox-seed.json"


class Stack(LocalStack):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, TEST_SECRET, SEED)


__all__ = ["PROVIDER_ID", "Stack", "wait_for"]
