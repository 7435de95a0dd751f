"""The queue side's two paths: the upserter tests run once as if every source could void (the
voiding-safe path) and once as if none could (the lean path, three state requests per update), so
both keep every guarantee the tests state. Also the fakes most queue-side tests start from (a module
defining a fixture of the same name uses its own)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.delivery import upsert
from tests.builders import USER_ID
from tests.fakes import FakeGraph, FakeQueue, MemoryStateStore

BOTH_PATHS = {
    "test_upsert",
    "test_merge_properties",
    "test_review8_findings",
    "test_event_worker",
    "test_register_content",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rsplit(".", 1)[-1] in BOTH_PATHS:
        metafunc.parametrize("queue_path", ["voidable", "lean"], indirect=True)


@pytest.fixture(autouse=True)
def queue_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    path: str = getattr(request, "param", "voidable")
    if path == "lean" and request.node.get_closest_marker("voiding"):
        pytest.skip("how a voiding meets its statement on the path of sources that can void")
    if path == "lean":
        original = upsert.CourseActivityUpserter.__init__

        def lean(self: upsert.CourseActivityUpserter, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("voiding_sources", ())
            original(self, *args, **kwargs)

        monkeypatch.setattr(upsert.CourseActivityUpserter, "__init__", lean)
    return path


@pytest.fixture
def graph() -> FakeGraph:
    """Graph knowing the builders' learner (Ada) and course (course-101)."""
    fake = FakeGraph()
    fake.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    fake.contents["course-101"] = "content-101"
    return fake


@pytest.fixture
def state() -> MemoryStateStore:
    return MemoryStateStore()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()
