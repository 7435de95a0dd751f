"""The queue side's two paths: the upserter tests run once as if every source could void (the
voiding-safe path) and once as if none could (the lean path, three state requests per update), so
both keep every guarantee the tests state."""

from __future__ import annotations

from typing import Any

import pytest

from shared.delivery import upsert

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
