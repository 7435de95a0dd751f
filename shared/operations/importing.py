"""Historical events into the bridge: through the same queue as a webhook's, so the same guarantees
hold (deduplicated by source and eventId on the queue side: an interrupted import is run again).

Files are read a line at a time (a 100,000-event file is never held in memory): CSV with a header of
the canonical fields flattened (below), or JSON Lines of canonical events. A `.json` file is a body in
the source's own format (a webhook body or an LRS export), parsed as its webhook would be.

CSV columns: `eventId`, `occurredAt`, one of `learnerUserId` / `learnerUpn` / `learnerEmail` /
(`learnerAccountHomePage` and `learnerAccountName`), `courseId`, optional `courseTitle`, `courseUrl`,
`status`, `completionPercentage`, `startedAt`, `completedAt`, `externalCourseActivityId`.

Messages are sent in small batches, paced to `rate` events a second, so the queue side keeps within
Graph's throttling instead of meeting a wall of 429s (which it would survive, deferred, but slowly).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.events.model import CanonicalEvent, CourseStatus
from shared.events.queue import EVENTS_QUEUE, QueuedEvent, Voiding
from shared.operations.catalog import CatalogFileError, Problem
from shared.operations.csv_rows import EXTRA_CELLS, CsvFileError, csv_records
from shared.sources.base import Delivery, SourceFormat, load_json
from shared.sources.exceptions import InvalidPayload
from shared.storage.queues import QueueSender

#: Events a second the queue side can apply without meeting Graph's throttling on this provider
#: (about two Graph calls each): a sensible default, not a measured limit of Graph's.
DEFAULT_RATE = 20.0
_BATCH = 32
#: Invalid lines kept for the report; the rest are counted.
_KEPT_PROBLEMS = 1000

_LEARNER_COLUMNS = {"learnerUserId": "userId", "learnerUpn": "upn", "learnerEmail": "email"}
#: CSV columns of the canonical `assignment` (issue 18); `assignmentWithdrawn` true withdraws it.
_ASSIGNMENT_COLUMNS = {
    "assignmentType": "type",
    "assignedAt": "assignedAt",
    "dueAt": "dueAt",
    "dueDate": "dueDate",
    "timeZone": "timeZone",
    "assignmentNotes": "notes",
    "assignmentWithdrawn": "withdrawn",
}
_ASSIGNER_COLUMNS = {"assignerUserId": "userId", "assignerUpn": "upn", "assignerEmail": "email"}
#: How spreadsheets and LMS exports write a boolean column (case-insensitive): `assignmentWithdrawn`'s
#: true words withdraw the assignment, its false words mean no assignment statement.
_TRUE_WORDS = frozenset({"true", "1", "yes", "on", "y"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off", "n"})


@dataclass(frozen=True)
class CellProblem:
    """A CSV cell no canonical field can hold: the line is invalid, with this detail."""

    detail: str


@dataclass
class ImportSummary:
    accepted: int = 0
    ignored: int = 0
    invalid: int = 0
    problems: list[Problem] = field(default_factory=list)

    def reject(self, where: str, detail: str) -> None:
        self.invalid += 1
        if len(self.problems) < _KEPT_PROBLEMS:
            self.problems.append(Problem(where, detail))

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "ignored": self.ignored,
            "invalid": self.invalid,
            "problems": [{"where": p.where, "detail": p.detail} for p in self.problems],
        }


Item = tuple[
    str, CanonicalEvent | Voiding | str | None
]  # where, and the event, a voiding, a problem or ignored


def count_lines(path: Path) -> int:
    """For the progress bar's ETA: one pass over the bytes, nothing parsed."""
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def read_items(path: Path, source: SourceFormat) -> Iterator[Item]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_items(path, source.name)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_items(path, source.name)
    if suffix == ".json":
        return _native_items(path, source)
    raise CatalogFileError(f"{path}: an import is a .csv, .jsonl or (the source's own format) .json file")


def _open(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CatalogFileError(f"cannot read {path}: {exc.strerror}") from None


def _event(doc: Any, source: str, where: str) -> Item:
    if isinstance(doc, CellProblem):
        return where, doc.detail
    if not isinstance(doc, dict):
        return where, "not a JSON object"
    doc = {"source": source, **doc}
    if doc["source"] != source:
        return where, f"source {str(doc['source'])[:80]!r} is not {source!r}"
    try:
        event = CanonicalEvent.model_validate(doc)
    except ValidationError as exc:
        return where, _explain(exc)
    # "Only not started" has nothing to write; an assignment (or its withdrawal) has, whatever its status.
    return where, None if event.status is CourseStatus.NOT_STARTED and event.assignment is None else event


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        name = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _jsonl_items(path: Path, source: str) -> Iterator[Item]:
    """Each line as its webhook would read it (load_json: strict JSON, nesting and huge numbers
    refused): a line the webhook would answer 400 is an invalid line, not the end of the import."""
    with _open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                doc = load_json(line.encode("utf-8"))
            except InvalidPayload as exc:
                yield f"line {number}", str(exc).replace("The body", "the line", 1)
                continue
            yield _event(doc, source, f"line {number}")


def _csv_items(path: Path, source: str) -> Iterator[Item]:
    with _open(path) as handle:
        try:
            for where, row in csv_records(str(path), handle, required="eventId"):
                yield (where, EXTRA_CELLS) if row is None else _event(_from_columns(row), source, where)
        except CsvFileError as exc:
            raise CatalogFileError(str(exc)) from None


def _from_columns(row: dict[str, str]) -> dict[str, Any] | CellProblem:
    """A CSV row as a canonical event document (empty cells are absent; unknown columns stay, so the
    model names them; numbers stay text, for the model to read or refuse by name), or the problem of
    a cell no field can hold."""
    cells = {k: v.strip() for k, v in row.items() if k and v and v.strip()}
    learner: dict[str, Any] = {
        _LEARNER_COLUMNS[k]: cells.pop(k) for k in list(cells) if k in _LEARNER_COLUMNS
    }
    home, name = cells.pop("learnerAccountHomePage", None), cells.pop("learnerAccountName", None)
    if home or name:
        learner["account"] = {"homePage": home, "name": name}
    course: dict[str, Any] = {"externalId": cells.pop("courseId", None)}
    for column, key in (("courseTitle", "title"), ("courseUrl", "url")):
        if column in cells:
            course[key] = cells.pop(column)
    if "assignmentWithdrawn" in cells:  # a boolean column: true withdraws, false states nothing
        word = cells["assignmentWithdrawn"].casefold()
        if word in _FALSE_WORDS:
            del cells["assignmentWithdrawn"]
        elif word in _TRUE_WORDS:
            cells["assignmentWithdrawn"] = "true"
        else:
            return CellProblem(
                f"assignmentWithdrawn: {cells['assignmentWithdrawn'][:40]!r} is neither true (true, 1, yes, "
                "on, y: withdraws the assignment) nor false (false, 0, no, off, n: no assignment statement)"
            )
    assignment: dict[str, Any] = {k: cells.pop(c) for c, k in _ASSIGNMENT_COLUMNS.items() if c in cells}
    assigner = {key: cells.pop(column) for column, key in _ASSIGNER_COLUMNS.items() if column in cells}
    if assigner:
        assignment["assigner"] = assigner
    document = {**cells, "learner": learner, "course": course}
    if assignment:
        document["assignment"] = assignment
    return document


def _native_items(path: Path, source: SourceFormat) -> Iterator[Item]:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise CatalogFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        result = source.read(Delivery(source.name, body, {}, datetime.now(UTC)))
    except InvalidPayload as exc:
        details = "; ".join(f"{p.pointer}: {p.detail}" for p in exc.problems)
        yield "body", f"{exc}{' ' + details if details else ''}"
        return
    for event in result.events:
        yield f"event {event.event_id}", event
    for voiding in result.voids:
        yield f"voiding {voiding.voiding_event_id}", voiding
    for ignored in result.ignored:
        yield f"item {ignored.reference or '?'}", None


#: What an event carrying an assignment is told while the bridge does not write assignments (as the
#: webhook's 422 assignments-disabled).
ASSIGNMENTS_DISABLED = (
    "assignment: this bridge does not write assigned courses (BRIDGE_ASSIGNMENTS_ENABLED is not true)"
)


class Importer:
    """Sends what the files hold to the events queue, paced; `queue` None validates only (dry run)."""

    def __init__(
        self,
        queue: QueueSender | None,
        rate: float = DEFAULT_RATE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        *,
        assignments_enabled: bool = True,
    ) -> None:
        self._assignments_enabled = assignments_enabled
        self._queue = queue
        self._rate = rate
        self._sleep = sleep
        self._clock = clock
        self._batch: list[str] = []
        self._sent = 0
        self._started: float | None = None

    def run(self, items: Iterator[Item], summary: ImportSummary, advance: Callable[[], None]) -> None:
        for where, item in items:
            advance()
            if isinstance(item, str):
                summary.reject(where, item)
            elif item is None:
                summary.ignored += 1
            elif (
                isinstance(item, CanonicalEvent)
                and item.assignment is not None
                and not self._assignments_enabled
            ):
                summary.reject(where, ASSIGNMENTS_DISABLED)
            else:
                summary.accepted += 1
                self._add(item)
        self.flush()

    def _add(self, item: CanonicalEvent | Voiding) -> None:
        if self._queue is None:
            return
        now = datetime.now(UTC)
        queued = (
            QueuedEvent(event=item, received_at=now)
            if isinstance(item, CanonicalEvent)
            else QueuedEvent(void=item, received_at=now)
        )
        self._batch.append(queued.model_dump_json(by_alias=True, exclude_none=True))
        if len(self._batch) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self._queue is None or not self._batch:
            return
        if self._started is None:
            self._started = self._clock()
        due = self._started + self._sent / self._rate  # when this batch may go, at `rate` a second
        wait = due - self._clock()
        if wait > 0:
            self._sleep(wait)
        self._queue.send_all(EVENTS_QUEUE, self._batch)
        self._sent += len(self._batch)
        self._batch = []
