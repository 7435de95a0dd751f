"""CSV files with a header, row by row, for `import` and `catalog push`.

The csv module's DictReader is not enough for an operator's file: a header naming a column twice
keeps the last cell silently (one of two values vanishes, where an unknown column is refused), a
record spread over several lines (a quoted cell with line breaks) is numbered by its last line, and a
cell longer than the module's field limit (128 KiB) raises `csv.Error` in the middle of the file.
Here the header is checked, each record is named by its first line, and a record the module cannot
read stops the file with its line (after it, the module may have lost track of which quotes are
open: nothing later can be trusted).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator

#: What a record with more cells than the header has columns is reported as.
EXTRA_CELLS = "more cells than the header has columns"


class CsvFileError(Exception):
    """The file cannot be read as a CSV with this header (from the line named on)."""


Record = tuple[str, dict[str, str] | None]


def csv_records(name: str, lines: Iterable[str], required: str) -> Iterator[Record]:
    """Each record as `("line N", {column: cell})` (N its first line; missing trailing cells are
    absent), or `("line N", None)` when it has more cells than the header has columns. Blank lines are
    skipped. CsvFileError for a header without `required` or naming a column twice, and for a record
    the csv module cannot read."""
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CsvFileError(f"{name} line 1: {exc}") from None
    if not header or required not in header:
        raise CsvFileError(f"{name}: the CSV header must name the columns, {required} among them")
    repeated = [column for column, count in Counter(header).items() if column and count > 1]
    if repeated:
        raise CsvFileError(
            f"{name}: the CSV header names {repeated[0][:80]!r} twice (which cell would count is not ours "
            "to guess)"
        )
    last = reader.line_num
    while True:
        first = last + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvFileError(f"{name} line {first}: {exc}; the file was not read past it") from None
        last = reader.line_num
        if not cells:
            continue
        if len(cells) > len(header):
            yield f"line {first}", None
        else:
            yield f"line {first}", dict(zip(header, cells, strict=False))
