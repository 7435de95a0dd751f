"""The registerContent source option: an event for a course Viva Learning does not know, carrying its
title and URL, registers the course before its activity instead of being parked."""

from __future__ import annotations

import pytest

from shared.delivery import CourseActivityUpserter, PermanentFailure, UpsertResult
from shared.sources.base import FormatOptions
from tests.builders import canonical
from tests.fakes import FakeGraph, MemoryStateStore

NEW_COURSE = {"externalId": "course-new", "title": "Difference Engines", "url": "https://x.example/de"}


make = canonical  # a generic-source event, fields overridden


def upserter(graph: FakeGraph, languages: dict[str, str]) -> CourseActivityUpserter:
    return CourseActivityUpserter(graph, MemoryStateStore(), content_languages=languages)


async def test_an_unknown_course_with_title_and_url_is_registered_then_applied(graph: FakeGraph) -> None:
    result = await upserter(graph, {"generic": "en-gb"}).apply(make(course=NEW_COURSE))
    assert result is UpsertResult.CREATED
    written = graph.content_docs["course-new"]
    assert (written.title, written.content_web_url, written.language_tag) == (
        "Difference Engines",
        "https://x.example/de",
        "en-gb",
    )
    [record] = graph.activities.values()
    assert record.learning_content_id == graph.contents["course-new"]


async def test_known_courses_cost_no_registration(graph: FakeGraph) -> None:
    await upserter(graph, {"generic": "en-us"}).apply(make(course={**NEW_COURSE, "externalId": "course-101"}))
    assert "put_content" not in graph.calls


@pytest.mark.parametrize(
    "course", [{"externalId": "course-new", "title": "No URL"}, {"externalId": "course-new"}]
)
async def test_without_title_and_url_the_event_is_parked_as_before(
    graph: FakeGraph, course: dict[str, str]
) -> None:
    with pytest.raises(PermanentFailure) as parked:
        await upserter(graph, {"generic": "en-us"}).apply(make(course=course))
    assert parked.value.reason == "contentNotFound"
    assert "put_content" not in graph.calls


async def test_a_source_without_the_option_never_registers(graph: FakeGraph) -> None:
    with pytest.raises(PermanentFailure) as parked:
        await upserter(graph, {"other": "en-us"}).apply(make(course=NEW_COURSE))
    assert parked.value.reason == "contentNotFound"
    assert graph.content_docs == {}


def test_the_option_is_off_by_default_and_takes_a_language_tag() -> None:
    assert FormatOptions().register_content is False
    options = FormatOptions.model_validate({"registerContent": True, "contentLanguage": "fr-fr"})
    assert (options.register_content, options.content_language) == (True, "fr-fr")
    with pytest.raises(ValueError, match="contentLanguage"):
        FormatOptions.model_validate({"contentLanguage": "not a tag"})


def test_a_course_url_must_be_a_web_address() -> None:
    with pytest.raises(ValueError, match="url"):
        make(course={**NEW_COURSE, "url": "javascript:alert(1)"})
