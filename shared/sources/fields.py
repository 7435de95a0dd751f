"""Reading the values platforms actually send: timestamps in many ISO shapes and epochs, percentages
as strings or floats, and ids for items that carry none."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from fractions import Fraction
from typing import Any

_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?)?"
    r"\s*(?P<tz>Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_MAX_TIMESTAMP_LENGTH = 64
_ID_NAMESPACE = uuid.UUID("b5d3e0a4-1c7f-4f0e-8a55-2f7c1d9e6b31")


def parse_timestamp(value: Any, default_zone: tzinfo = UTC) -> datetime:
    """ISO 8601 as producers really write it (no seconds, `+0100`, `+01`, any fraction, a space for T),
    or epoch seconds / milliseconds; a value without a zone is in `default_zone`. Returns UTC.

    Every failure is a ValueError: dates at the edges of the calendar (`0001-01-01T00:00+01:00` is
    before year 1 in UTC) and epochs like `1e20` raise OverflowError or OSError inside datetime, and
    callers only expect ValueError for "not a usable timestamp"."""
    try:
        return _parse_timestamp(value, default_zone)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"the timestamp is out of range ({type(exc).__name__})") from None


def _parse_timestamp(value: Any, default_zone: tzinfo) -> datetime:
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 100_000_000_000 else value
        return datetime.fromtimestamp(seconds, UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp, got {type(value).__name__}")
    match = _ISO.match(value.strip()) if len(value) <= _MAX_TIMESTAMP_LENGTH else None
    if match is None:
        raise ValueError("the value is not an ISO 8601 timestamp")
    parts = match.groupdict()
    fraction = (parts["f"] or "0")[:6].ljust(6, "0")
    naive = datetime.fromisoformat(parts["date"]).replace(
        hour=int(parts["h"] or 0),
        minute=int(parts["m"] or 0),
        second=int(parts["s"] or 0),
        microsecond=int(fraction),
    )
    return naive.replace(tzinfo=_zone(parts["tz"], default_zone)).astimezone(UTC)


def _zone(text: str | None, default: tzinfo) -> tzinfo:
    if text is None:
        return default
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def optional_timestamp(value: Any, default_zone: tzinfo = UTC) -> datetime | None:
    """`parse_timestamp`, or None when the platform left the field out or empty."""
    return None if value is None or value == "" else parse_timestamp(value, default_zone)


def optional_percentage(value: Any) -> int | None:
    """`parse_percentage`, or None when the platform left the field out."""
    return None if value is None else parse_percentage(value)


def parse_percentage(value: Any) -> int:
    """0-100 from an int, a float (100.0) or a numeric string ("24.0"), rounded to a whole number."""
    if isinstance(value, bool):
        raise ValueError("a percentage cannot be a boolean")
    try:
        number = float(value) if isinstance(value, int | float | str) else float("nan")
    except (ValueError, OverflowError):  # an integer too large for a float is no percentage either
        number = float("nan")
    if not 0 <= number <= 100:
        raise ValueError("the value is not a percentage from 0 to 100")
    return round(number)


def ratio_percentage(done: int | float, total: int | float) -> int | None:
    """`done` of `total` as 0-100, exactly (no float overflow for values no float can hold); None when
    there is no positive total."""
    try:
        whole = Fraction(total)
        if whole <= 0:
            return None
        return max(0, min(100, round(100 * Fraction(done) / whole)))
    except (ValueError, OverflowError):  # infinities and NaN have no ratio
        return None


def derived_event_id(source: str, item: Any) -> str:
    """A deterministic id for an item that carries none: the same content gives the same id, so a
    redelivery is still recognised as one."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(uuid.uuid5(_ID_NAMESPACE, f"{source}\x1f{canonical}"))
