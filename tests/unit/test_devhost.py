"""The dev host reads the same host.json the Functions host does."""

import json
from pathlib import Path

import pytest

from devtools.devhost.host import QueueOptions, _route_variants, _timespan

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "seconds"), [("00:00:10", 10.0), ("00:02:00", 120.0), ("1.00:00:00", 86400.0), (1500, 1.5)]
)
def test_host_json_timespans(value: str | int, seconds: float) -> None:
    assert _timespan(value) == seconds


def test_a_malformed_timespan_is_refused() -> None:
    with pytest.raises(ValueError, match="hh:mm:ss"):
        _timespan("10 seconds")


def test_queue_options_come_from_the_apps_host_json() -> None:
    options = QueueOptions.from_host_json(json.loads((ROOT / "host.json").read_text()))
    assert options == QueueOptions(
        batch_size=16, max_dequeue_count=5, visibility_timeout=10.0, max_polling_interval=2.0
    )


def test_the_hosts_defaults_apply_when_host_json_is_silent() -> None:
    assert QueueOptions.from_host_json({}) == QueueOptions()


@pytest.mark.parametrize(
    ("template", "paths"),
    [
        ("health", ["health"]),
        ("webhooks/{source}/{token?}", ["webhooks/{source}", "webhooks/{source}/{token}"]),
        ("items/{id:int}", ["items/{id}"]),
    ],
)
def test_route_templates_become_paths_like_the_hosts(template: str, paths: list[str]) -> None:
    assert _route_variants(template) == paths
