"""The provider's course catalog in Viva Learning: reading a catalog file, pushing it to Graph.

Course activities can only be written for content Viva Learning knows (`learningContentId`), so the
catalog has to be there first. A catalog file is CSV (a header names the columns, lists are separated
by `;`) or JSON (an array of objects, or `{"value": [...]}`), with learningContent's own field names.
Each entry is written with `PATCH learningContents(externalId='...')`, which creates or updates it:
pushing the same file twice changes nothing more. Entries go in JSON batches of up to 20: the lookups
that tell created from updated apart, then the writes.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from shared.events.model import NonEmpty, OpaqueId
from shared.graph.errors import GraphError
from shared.graph.gateway import MAX_BATCH, ContentWrite, LearningGraph
from shared.operations.batching import in_batches
from shared.operations.csv_rows import CsvFileError, csv_records
from shared.sources.base import load_json
from shared.sources.exceptions import InvalidPayload

WebUrl = Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")]
LanguageTag = Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]


def _split_list(value: object) -> object:
    """A CSV cell `a; b` as ["a", "b"]; JSON lists pass as they are."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    return value


Tags = Annotated[list[NonEmpty], BeforeValidator(_split_list)]


class CatalogEntry(BaseModel):
    """One learningContent as a catalog file describes it (the resource's camelCase names)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    external_id: OpaqueId
    title: NonEmpty
    content_web_url: WebUrl
    language_tag: LanguageTag
    description: NonEmpty | None = None
    format: NonEmpty | None = None
    duration: timedelta | None = Field(default=None, description="ISO 8601, e.g. PT1H30M")
    source_name: NonEmpty | None = None
    thumbnail_web_url: WebUrl | None = None
    level: Literal["beginner", "intermediate", "advanced"] | None = None
    number_of_pages: Annotated[int, Field(ge=0)] | None = None
    is_active: bool | None = None
    is_premium: bool | None = None
    is_searchable: bool | None = None
    additional_tags: Tags | None = None
    contributors: Tags | None = None
    skill_tags: Tags | None = None
    created_date_time: AwareDatetime | None = None
    last_modified_date_time: AwareDatetime | None = None

    def to_write(self) -> ContentWrite:
        def tags(values: list[str] | None) -> tuple[str, ...] | None:
            return tuple(values) if values is not None else None

        return ContentWrite(
            title=self.title,
            content_web_url=self.content_web_url,
            language_tag=self.language_tag,
            description=self.description,
            format=self.format,
            duration=self.duration,
            source_name=self.source_name,
            thumbnail_web_url=self.thumbnail_web_url,
            level=self.level,
            number_of_pages=self.number_of_pages,
            is_active=self.is_active,
            is_premium=self.is_premium,
            is_searchable=self.is_searchable,
            additional_tags=tags(self.additional_tags),
            contributors=tags(self.contributors),
            skill_tags=tags(self.skill_tags),
            created_at=self.created_date_time,
            last_modified_at=self.last_modified_date_time,
        )


class CatalogFileError(Exception):
    """The file as a whole cannot be read (missing, not CSV/JSON, no header): nothing is pushed."""


@dataclass(frozen=True)
class Problem:
    """A line (CSV) or item (JSON) that was not pushed, and why (field names and Graph's message)."""

    where: str
    detail: str


@dataclass
class CatalogSummary:
    created: int = 0
    updated: int = 0
    invalid: list[Problem] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "invalid": [{"where": p.where, "detail": p.detail} for p in self.invalid],
            "rejected": [{"where": p.where, "detail": p.detail} for p in self.rejected],
        }


def read_catalog(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each entry with where it is in the file (`line 3`, `item 2`), as raw strings and values."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CatalogFileError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CatalogFileError(f"{path} is not UTF-8 text") from None
    if path.suffix.lower() == ".csv":
        return _csv_rows(path, text)
    if path.suffix.lower() == ".json":
        return _json_items(path, text)
    raise CatalogFileError(f"{path}: a catalog is a .csv or .json file")


def _csv_rows(path: Path, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every row read before any is validated: a file the csv module cannot read to its end is refused
    whole, and nothing is pushed."""
    try:
        records = list(csv_records(str(path), io.StringIO(text), required="externalId"))
    except CsvFileError as exc:
        raise CatalogFileError(str(exc)) from None
    return iter(
        [
            (where, {"_extraCells": True} if row is None else {k: v for k, v in row.items() if v != ""})
            for where, row in records
        ]
    )


def _json_items(path: Path, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """As the webhook reads a body (load_json): strict JSON, nesting past 64 levels, integers past
    4,300 digits and unpaired surrogates refused, each with a message instead of an exception."""
    try:
        document = load_json(text.encode("utf-8"))
    except InvalidPayload as exc:
        raise CatalogFileError(f"{path}: {str(exc).replace('The body', 'the file', 1)}") from None
    if isinstance(document, dict) and isinstance(document.get("value"), list):
        document = document["value"]
    if not isinstance(document, list):
        raise CatalogFileError(f'{path}: a JSON catalog is an array of contents or {{"value": [...]}}')
    return (
        (f"item {n}", item if isinstance(item, dict) else {"_notAnObject": item})
        for n, item in enumerate(document, start=1)
    )


def validate_entries(
    rows: Iterator[tuple[str, dict[str, Any]]], summary: CatalogSummary
) -> list[tuple[str, CatalogEntry]]:
    """The valid entries; the others go to `summary.invalid` with each bad field and why. An
    externalId given twice is refused the second time: which of the two should win is not ours to say."""
    valid: list[tuple[str, CatalogEntry]] = []
    first_seen: dict[str, str] = {}
    for where, doc in rows:
        try:
            entry = CatalogEntry.model_validate(doc)
        except ValidationError as exc:
            summary.invalid.append(Problem(where, _explain(exc)))
            continue
        if entry.external_id in first_seen:
            summary.invalid.append(
                Problem(where, f"externalId repeated (first at {first_seen[entry.external_id]})")
            )
            continue
        first_seen[entry.external_id] = where
        valid.append((where, entry))
    return valid


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        name = ".".join(str(p) for p in error["loc"]) or "entry"
        if name == "_extraCells":
            parts.append("more cells than the header has columns")
        elif name == "_notAnObject":
            parts.append("not a JSON object")
        else:
            parts.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


class GraphRefused(Exception):
    """Graph refused the whole push (401/403): carrying on would only fail the same way."""


async def push_entries(
    graph: LearningGraph,
    entries: list[tuple[str, CatalogEntry]],
    summary: CatalogSummary,
    advance: Callable[[], None] = lambda: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> CatalogSummary:
    """Create or update each entry, twenty at a time: one batch of lookups (whether each is new), then
    one batch of writes. A throttled request waits as Graph asks and goes again; the others go on."""
    for start in range(0, len(entries), MAX_BATCH):
        chunk = dict(entries[start : start + MAX_BATCH])
        by_id = {entry.external_id: where for where, entry in chunk.items()}
        existed: dict[str, str | None] = {}
        async for external_id, found in in_batches(list(by_id), graph.find_content_ids, sleep=sleep):
            if isinstance(found, GraphError):
                _reject(summary, by_id[external_id], found)
                advance()
            else:
                existed[external_id] = found
        writes = [(e, chunk[by_id[e]].to_write()) for e in existed]
        async for (external_id, _), written in in_batches(writes, graph.put_contents, sleep=sleep):
            if isinstance(written, GraphError):
                _reject(summary, by_id[external_id], written)
            elif existed[external_id] is None:
                summary.created += 1
            else:
                summary.updated += 1
            advance()
    position = {where: n for n, (where, _) in enumerate(entries)}
    summary.rejected.sort(key=lambda problem: position[problem.where])  # in file order, waits or not
    return summary


def _reject(summary: CatalogSummary, where: str, error: GraphError) -> None:
    if error.status in (401, 403):
        raise GraphRefused(_refusal(error)) from None
    summary.rejected.append(Problem(where, f"Graph {error.status} {error.code}: {error.message}"))


def _refusal(exc: GraphError) -> str:
    if exc.status == 403:
        return (
            f"Graph refused the content write (403 {exc.code}): the identity needs the application "
            "permission LearningContent.ReadWrite.All (Bicep: enableContentWrites)"
        )
    return f"Graph refused the credentials (401 {exc.code}): {exc.message}"
