"""The course catalog: reading catalog files and pushing them through the Graph gateway (FakeGraph,
bound to the sandbox by tests/contract)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shared.cli.__main__ import main
from shared.graph.errors import GraphError
from shared.operations.catalog import (
    CatalogEntry,
    CatalogFileError,
    CatalogSummary,
    GraphRefused,
    push_entries,
    read_catalog,
    validate_entries,
)
from tests.fakes import FakeGraph

ROOT = Path(__file__).resolve().parents[2]
HEADER = "externalId,title,contentWebUrl,languageTag\n"


def entries(path: Path) -> tuple[list[tuple[str, CatalogEntry]], CatalogSummary]:
    summary = CatalogSummary()
    return list(validate_entries(read_catalog(path), summary)), summary


def test_the_sample_csv_and_json_catalogs_are_valid() -> None:
    csv_entries, csv_summary = entries(ROOT / "samples/catalog/catalog.csv")
    json_entries, json_summary = entries(ROOT / "samples/catalog/catalog.json")
    assert (len(csv_entries), len(json_entries)) == (2, 1)
    assert csv_summary.invalid == json_summary.invalid == []


def test_csv_lists_are_split_on_semicolons_and_durations_read_as_iso_8601() -> None:
    summary = CatalogSummary()
    (_, first), _ = validate_entries(read_catalog(ROOT / "samples/catalog/catalog.csv"), summary)
    write = first.to_write()
    assert write.skill_tags == ("mathematics", "engineering")
    assert write.duration == timedelta(hours=1, minutes=30)
    assert write.description == "Gears and columns."


def test_invalid_rows_are_reported_by_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        HEADER
        + "a,Title,https://x.example/a,en-us\n"
        + "b,,https://x.example/b,en-us\n"
        + "c,Title,not-a-url,en-us\n"
        + "a,Again,https://x.example/a2,en-us\n"
        + "d,Title,https://x.example/d,en-us,extra\n",
        encoding="utf-8",
    )
    valid, summary = entries(path)
    assert len(valid) == 1
    where = {p.where: p.detail for p in summary.invalid}
    assert set(where) == {"line 3", "line 4", "line 5", "line 6"}
    assert "title" in where["line 3"]
    assert "contentWebUrl" in where["line 4"]
    assert "repeated" in where["line 5"]
    assert "more cells" in where["line 6"]


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("c.txt", "x", ".csv or .json"),
        ("c.json", "{not json", "not valid JSON"),
        ("c.json", '{"a": 1}', "an array"),
        ("c.csv", "title,contentWebUrl\n", "externalId"),
    ],
)
def test_unreadable_files_are_refused_whole(tmp_path: Path, name: str, text: str, says: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogFileError, match=says):
        list(read_catalog(path))


async def test_push_creates_new_content_and_updates_known_content() -> None:
    graph = FakeGraph()
    graph.contents["course-302"] = "content-known"
    valid, summary = entries(ROOT / "samples/catalog/catalog.csv")
    await push_entries(graph, valid, summary)
    assert (summary.created, summary.updated) == (1, 1)
    assert graph.contents["course-302"] == "content-known"
    assert graph.content_docs["course-301"].title == "Difference Engines"


async def test_throttled_writes_wait_as_graph_asks_then_go_through() -> None:
    graph = FakeGraph()
    graph.errors["put_content"].append(GraphError(429, "TooManyRequests", "slow down", retry_after=3))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    valid, summary = entries(ROOT / "samples/catalog/catalog.json")
    await push_entries(graph, valid, summary, sleep=sleep)
    assert (summary.created, waits) == (1, [3])


async def test_a_refused_entry_is_reported_and_the_rest_still_pushed() -> None:
    graph = FakeGraph()
    graph.errors["put_content"].append(GraphError(400, "BadRequest", "languageTag is not supported"))
    valid, summary = entries(ROOT / "samples/catalog/catalog.csv")
    await push_entries(graph, valid, summary)
    assert [p.where for p in summary.rejected] == ["line 2"]
    assert summary.created == 1


async def test_a_missing_permission_stops_the_push_naming_it() -> None:
    graph = FakeGraph()
    graph.errors["put_content"].append(GraphError(403, "Forbidden", "Insufficient privileges"))
    valid, summary = entries(ROOT / "samples/catalog/catalog.json")
    with pytest.raises(GraphRefused, match=r"LearningContent\.ReadWrite\.All"):
        await push_entries(graph, valid, summary)


def test_the_cli_refuses_a_bad_file_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "catalog.xml"
    path.write_text("<x/>", encoding="utf-8")
    settings = tmp_path / "local.settings.json"
    settings.write_text(
        '{"Values": {"BRIDGE_STORAGE": "UseDevelopmentStorage=true", "BRIDGE_SOURCES": "{}",'
        ' "BRIDGE_PROVIDER_REGISTRATION_ID": "p"}}',
        encoding="utf-8",
    )
    assert main(["--settings", str(settings), "catalog", "push", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert ".csv or .json" in err


def many(tmp_path: Path, count: int) -> list[tuple[str, CatalogEntry]]:
    path = tmp_path / "many.csv"
    path.write_text(
        HEADER + "".join(f"c{n},Course {n},https://x.example/{n},en-us\n" for n in range(count)),
        encoding="utf-8",
    )
    valid, _ = entries(path)
    return valid


async def test_entries_are_looked_up_then_written_twenty_to_a_batch(tmp_path: Path) -> None:
    graph = FakeGraph()
    graph.contents["c3"] = "content-known"
    summary = await push_entries(graph, many(tmp_path, 25), CatalogSummary())
    assert (summary.created, summary.updated) == (24, 1)
    assert graph.batches == [
        ("find_content_id", 20),
        ("put_content", 20),
        ("find_content_id", 5),
        ("put_content", 5),
    ]


async def test_a_write_throttled_in_a_batch_waits_alone_and_a_refused_one_is_reported(tmp_path: Path) -> None:
    graph = FakeGraph()
    graph.errors_for[("put_content", "c1")].append(GraphError(429, "TooManyRequests", "slow", retry_after=2))
    graph.errors_for[("put_content", "c2")].append(
        GraphError(400, "BadRequest", "languageTag is not supported")
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    summary = await push_entries(graph, many(tmp_path, 4), CatalogSummary(), sleep=sleep)
    assert (summary.created, [p.where for p in summary.rejected], waits) == (3, ["line 4"], [2])
    assert graph.batches == [("find_content_id", 4), ("put_content", 4), ("put_content", 1)]
