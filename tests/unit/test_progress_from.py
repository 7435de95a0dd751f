"""Issue 18: "later progress and completions (from the same source, or from a source its options name)
update that assignment". A record is keyed by source, learner and course (shared.events.identity), so
an LMS reporting progress on a course an HR system assigned reached a second, self-initiated record
next to the assignment. The assigning source's option `progressFrom` names the sources whose progress
updates its records."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from shared.config.settings import SourceSettings
from shared.delivery import CourseActivityUpserter
from shared.events.model import CanonicalEvent, CourseStatus
from shared.sources.base import FormatOptions, progress_keys, progress_problems
from shared.sources.registry import build_isolated_sources
from tests.builders import TEST_SECRET, USER_ID, event
from tests.fakes import FakeGraph, MemoryStateStore

ASSIGNMENT = {"type": "required", "dueAt": "2026-12-31T17:00:00Z"}


def from_source(source: str, **fields: Any) -> CanonicalEvent:
    return CanonicalEvent.model_validate(event(source=source, **fields))


def assigned_by_hr(event_id: str = "hr-1") -> CanonicalEvent:
    return from_source(
        "hr", eventId=event_id, status="notStarted", completionPercentage=None, assignment=ASSIGNMENT
    )


def lms(
    event_id: str, status: str = "inProgress", percentage: int | None = 40, **fields: Any
) -> CanonicalEvent:
    at = "2026-11-22T10:00:00Z" if status == "completed" else "2026-11-21T09:00:00Z"
    return from_source(
        "lms", eventId=event_id, occurredAt=at, status=status, completionPercentage=percentage, **fields
    )


def graph() -> FakeGraph:
    fake = FakeGraph()
    fake.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    fake.contents["course-101"] = "content-101"
    return fake


async def run(events: list[CanonicalEvent], keys: dict[str, str] | None) -> FakeGraph:
    fake = graph()
    upserter = CourseActivityUpserter(fake, MemoryStateStore(), progress_keys=keys)
    for item in events:
        await upserter.apply(item)
    return fake


HR_TAKES_LMS = progress_keys({"hr": FormatOptions(progress_from=("lms",)), "lms": FormatOptions()})


async def test_without_progress_from_another_source_s_progress_is_a_second_record() -> None:
    """What the keying does by design: the LMS's record is its own (no source can write another's)."""
    fake = await run([assigned_by_hr(), lms("l-1")], keys=None)
    assert sorted(r.is_assignment for r in fake.activities.values()) == [False, True]


async def test_progress_from_a_source_the_assigner_names_updates_its_assignment() -> None:
    fake = await run([assigned_by_hr(), lms("l-1"), lms("l-2", "completed", None)], HR_TAKES_LMS)
    [record] = fake.activities.values()
    assert record.is_assignment
    assert (record.status, record.completion_percentage) == (CourseStatus.COMPLETED, 100)
    assert record.due_at is not None


async def test_progress_that_came_before_the_assignment_is_carried_into_it() -> None:
    fake = await run([lms("l-1"), assigned_by_hr()], HR_TAKES_LMS)
    [record] = fake.activities.values()
    assert (record.is_assignment, record.status, record.completion_percentage) == (
        True,
        CourseStatus.IN_PROGRESS,
        40,
    )


async def test_a_source_not_named_still_writes_its_own_record() -> None:
    other = from_source("elearning", eventId="e-1")
    fake = await run([assigned_by_hr(), other], HR_TAKES_LMS)
    assert len(fake.activities) == 2


async def test_a_named_source_s_own_ids_still_address_its_own_records() -> None:
    """progressFrom keys the named source's events by learner and course only: an
    externalCourseActivityId stays its sender's (namespaced by its source)."""
    fake = await run([assigned_by_hr(), lms("l-1", externalCourseActivityId="lms-record-9")], HR_TAKES_LMS)
    assert len(fake.activities) == 2


def test_progress_keys_map_each_named_source_to_the_source_that_names_it() -> None:
    options = {
        "hr": FormatOptions(progress_from=("lms", "moodle")),
        "lms": FormatOptions(),
        "moodle": FormatOptions(),
    }
    assert progress_keys(options) == {"lms": "hr", "moodle": "hr"}
    assert progress_problems(options) == {}


def test_progress_from_that_cannot_be_honoured_sets_the_naming_source_aside_with_the_reason() -> None:
    def source(name: str, **options: Any) -> SourceSettings:
        return SourceSettings(name, "generic", options, SecretStr(TEST_SECRET))

    catalog = build_isolated_sources(
        {
            "hr": source("hr", progressFrom=["lms"]),
            "hr2": source("hr2", progressFrom=["lms"]),
            "self": source("self", progressFrom=["self"]),
            "typo": source("typo", progressFrom=["lsm"]),
            "lms": source("lms"),
        }
    )
    assert sorted(catalog.available) == ["lms"]
    reasons = {name: aside.reason for name, aside in catalog.unavailable.items()}
    assert "'lms', which hr and hr2 all name" in reasons["hr"]
    assert "names the source itself" in reasons["self"]
    assert "'lsm', which is not a configured source" in reasons["typo"]
    assert catalog.unavailable["hr"].options is not None  # its queued events still resolve
    # an ambiguous name keys nothing: each source keeps its own records
    assert progress_keys({n: a.options for n, a in catalog.unavailable.items() if a.options}) == {}
