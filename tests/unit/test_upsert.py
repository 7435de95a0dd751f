from datetime import UTC, datetime

import pytest

from shared.delivery import CourseActivityUpserter, PermanentFailure, TransientFailure, UpsertResult
from shared.events.model import CanonicalEvent, CourseStatus
from shared.graph.errors import GraphError, GraphUnavailable
from tests.builders import USER_ID, event
from tests.fakes import FakeGraph


def make(**overrides: object) -> CanonicalEvent:
    return CanonicalEvent.model_validate(event(source="generic", **overrides))


@pytest.fixture
def graph() -> FakeGraph:
    fake = FakeGraph()
    fake.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    fake.users_by_upn["grace@contoso.example"] = "grace-id"
    fake.contents["course-101"] = "content-101"
    return fake


async def test_a_first_event_creates_the_course_activity(graph: FakeGraph) -> None:
    result = await CourseActivityUpserter(graph).apply(make(startedAt="2026-11-19T09:00:00Z"))
    assert result is UpsertResult.CREATED
    record = next(iter(graph.activities.values()))
    assert (record.learner_user_id, record.learning_content_id) == (USER_ID, "content-101")
    assert (record.status, record.completion_percentage) == (CourseStatus.IN_PROGRESS, 40)
    assert record.started_at == datetime(2026, 11, 19, 9, tzinfo=UTC)


async def test_completion_sets_100_percent_and_the_completion_time(graph: FakeGraph) -> None:
    await CourseActivityUpserter(graph).apply(make(status="completed", completionPercentage=None))
    record = next(iter(graph.activities.values()))
    assert record.completion_percentage == 100
    assert record.completed_at == datetime(2026, 11, 20, 14, 3, tzinfo=UTC)


async def test_a_redelivered_event_changes_nothing_and_writes_nothing(graph: FakeGraph) -> None:
    upserter = CourseActivityUpserter(graph)
    await upserter.apply(make())
    graph.calls.clear()
    assert await upserter.apply(make()) is UpsertResult.UNCHANGED
    assert graph.calls == ["get_activity"]


async def test_progress_after_completion_leaves_the_record_completed(graph: FakeGraph) -> None:
    upserter = CourseActivityUpserter(graph)
    done = make(
        eventId="done", status="completed", completionPercentage=None, startedAt="2026-11-01T00:00:00Z"
    )
    await upserter.apply(done)
    late = make(eventId="late", occurredAt="2026-11-19T10:00:00Z", completionPercentage=40)
    assert await upserter.apply(late) is UpsertResult.UNCHANGED
    record = next(iter(graph.activities.values()))
    assert (record.status, record.completion_percentage) == (CourseStatus.COMPLETED, 100)


async def test_percentage_never_decreases_but_the_earliest_start_wins(graph: FakeGraph) -> None:
    upserter = CourseActivityUpserter(graph)
    await upserter.apply(make(eventId="a", completionPercentage=60, startedAt="2026-11-10T00:00:00Z"))
    await upserter.apply(make(eventId="b", completionPercentage=30, startedAt="2026-11-01T00:00:00Z"))
    record = next(iter(graph.activities.values()))
    assert record.completion_percentage == 60
    assert record.started_at == datetime(2026, 11, 1, tzinfo=UTC)


async def test_an_existing_record_is_updated_without_resolving_the_learner_again(graph: FakeGraph) -> None:
    upserter = CourseActivityUpserter(graph)
    await upserter.apply(make(eventId="a"))
    graph.calls.clear()
    assert await upserter.apply(make(eventId="b", completionPercentage=80)) is UpsertResult.UPDATED
    assert graph.calls == ["get_activity", "update_activity"]


async def test_losing_a_create_race_turns_into_an_update(graph: FakeGraph) -> None:
    await CourseActivityUpserter(graph).apply(make(eventId="a"))  # the other worker wins
    original_get = graph.get_activity
    seen: list[int] = []

    async def get_once_empty(external_id: str):
        seen.append(1)
        return None if len(seen) == 1 else await original_get(external_id)  # stale first read

    graph.get_activity = get_once_empty  # type: ignore[method-assign]
    result = await CourseActivityUpserter(graph).apply(make(eventId="b", completionPercentage=90))
    assert result is UpsertResult.UPDATED
    assert len(graph.activities) == 1
    assert next(iter(graph.activities.values())).completion_percentage == 90


async def test_email_falls_back_to_the_user_principal_name(graph: FakeGraph) -> None:
    await CourseActivityUpserter(graph).apply(make(learner={"email": "grace@contoso.example"}))
    assert next(iter(graph.activities.values())).learner_user_id == "grace-id"


async def test_found_learners_are_cached_per_worker(graph: FakeGraph) -> None:
    upserter = CourseActivityUpserter(graph)
    await upserter.apply(make(eventId="a"))
    graph.contents["course-102"] = "content-102"
    await upserter.apply(make(eventId="b", course={"externalId": "course-102"}))
    assert graph.calls.count("find_user_id_by:mail") == 1


async def test_an_unknown_learner_is_permanent_and_not_cached(graph: FakeGraph) -> None:
    upserter = CourseActivityUpserter(graph)
    unknown = make(learner={"email": "nobody@contoso.example"})
    with pytest.raises(PermanentFailure) as caught:
        await upserter.apply(unknown)
    assert caught.value.reason == "learnerNotFound"
    assert "nobody" not in caught.value.detail  # personal data stays out of reasons
    graph.users_by_mail["nobody@contoso.example"] = "new-user"
    assert await upserter.apply(unknown) is UpsertResult.CREATED


async def test_unknown_content_is_permanent(graph: FakeGraph) -> None:
    with pytest.raises(PermanentFailure) as caught:
        await CourseActivityUpserter(graph).apply(make(course={"externalId": "course-999"}))
    assert caught.value.reason == "contentNotFound"


async def test_an_account_learner_needs_a_mapping(graph: FakeGraph) -> None:
    with pytest.raises(PermanentFailure) as caught:
        await CourseActivityUpserter(graph).apply(
            make(learner={"account": {"homePage": "https://lms", "name": "u1"}})
        )
    assert caught.value.reason == "learnerNotResolvable"


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (GraphError(429, "TooManyRequests", "slow down", 5), TransientFailure, "graphTransient"),
        (GraphError(503, "ServiceUnavailable", "busy"), TransientFailure, "graphTransient"),
        (GraphUnavailable("timeout"), TransientFailure, "graphUnavailable"),
        (GraphError(400, "BadRequest", "Invalid property"), PermanentFailure, "graphRejected"),
        (GraphError(403, "Forbidden", "sync disabled"), PermanentFailure, "graphForbidden"),
    ],
)
async def test_graph_failures_are_classified_for_the_queue(
    graph: FakeGraph, error: Exception, kind: type[Exception], reason: str
) -> None:
    graph.errors["get_activity"].append(error)
    with pytest.raises(kind) as caught:
        await CourseActivityUpserter(graph).apply(make())
    assert caught.value.reason == reason  # type: ignore[attr-defined]
