from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.sources.fields import (
    derived_event_id,
    optional_percentage,
    optional_timestamp,
    parse_percentage,
    parse_timestamp,
)

T = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T14:03:00Z",
        "2026-11-20T14:03Z",  # no seconds
        "2026-11-20T15:03:00+01:00",
        "2026-11-20T15:03:00+0100",
        "2026-11-20T15:03+01",
        "2026-11-20 14:03:00",  # no zone: the default zone (UTC)
        "2026-11-20T14:03:00.000000000Z",  # nanoseconds
    ],
)
def test_timestamps_in_the_shapes_producers_send(text: str) -> None:
    assert parse_timestamp(text) == T


def test_fractions_are_kept_to_the_microsecond() -> None:
    assert parse_timestamp("2026-11-20T14:03:00.244Z") == T.replace(microsecond=244000)


def test_epoch_seconds_floats_and_milliseconds() -> None:
    assert parse_timestamp(T.timestamp()) == T
    assert parse_timestamp(int(T.timestamp() * 1000)) == T
    assert parse_timestamp(T.timestamp() + 0.5) == T.replace(microsecond=500000)


def test_a_zone_less_timestamp_takes_the_configured_zone() -> None:
    paris_winter = timezone(timedelta(hours=1))
    assert parse_timestamp("2026-11-20 15:03:00", paris_winter) == T


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", True, None, [1]])
def test_what_is_not_a_timestamp_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"timestamp|month|boolean"):
        parse_timestamp(value)


@pytest.mark.parametrize(("value", "expected"), [("24.0", 24), (100.0, 100), (0, 0), ("99.6", 100)])
def test_percentages_from_strings_and_floats(value: object, expected: int) -> None:
    assert parse_percentage(value) == expected


@pytest.mark.parametrize("value", ["-1", 100.5, "abc", None, True])
def test_what_is_not_a_percentage_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"percentage|boolean"):
        parse_percentage(value)


def test_derived_ids_depend_on_content_not_key_order() -> None:
    assert derived_event_id("s", {"a": 1, "b": 2}) == derived_event_id("s", {"b": 2, "a": 1})
    assert derived_event_id("s", {"a": 1}) != derived_event_id("s", {"a": 2})
    assert derived_event_id("s", {"a": 1}) != derived_event_id("t", {"a": 1})


def test_optional_fields_are_none_when_absent_and_read_when_present() -> None:
    assert optional_timestamp(None) is None
    assert optional_timestamp("") is None
    assert optional_timestamp("2026-11-20T14:03Z") == T
    assert optional_percentage(None) is None
    assert optional_percentage("37.5") == 38
    with pytest.raises(ValueError, match="percentage"):
        optional_percentage("lots")
