"""The msgraph-sdk gateway over an in-process transport, for what the sandbox cannot show: requests
built concurrently, and batch answers the sandbox never gives (424 and 429 for the batch itself)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from shared.events.model import CourseStatus
from shared.graph.errors import GraphError
from shared.graph.gateway import ActivityRecord, ActivityWrite
from shared.graph.msgraph_gateway import MsGraphLearningGraph

PROVIDER = "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90"
KEY = re.compile(r"externalcourseActivityId='([^']*)'")


class SlowCredentials(AnonymousAuthenticationProvider):
    """Signing a request suspends, as a managed identity's token refresh does."""

    async def authenticate_request(
        self, request: RequestInformation, additional_authentication_context: dict[str, Any] | None = None
    ) -> None:
        await asyncio.sleep(0.01)


def gateway(
    handler: Callable[[httpx.Request], httpx.Response], credentials: Any = None
) -> MsGraphLearningGraph:
    no_retries = RetryHandlerOption(max_retries=0)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        options={no_retries.get_key(): no_retries},
    )
    adapter = GraphRequestAdapter(credentials or AnonymousAuthenticationProvider(), http)
    adapter.base_url = "https://graph.test/v1.0"
    return MsGraphLearningGraph(GraphServiceClient(request_adapter=adapter), PROVIDER)


def activity(external_id: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.learningSelfInitiatedCourse",
        "id": f"id-{external_id}",
        "externalcourseActivityId": external_id,
        "learnerUserId": "learner",
        "learningContentId": "content",
        "status": "inProgress",
        "completionPercentage": 40,
    }


def by_key(request: httpx.Request) -> httpx.Response:
    found = KEY.search(httpx.URL(str(request.url)).path)
    assert found is not None
    return httpx.Response(200, json=activity(found.group(1)))


async def test_concurrent_reads_by_external_id_each_reach_their_own_record() -> None:
    """The SDK's alternate-key builders write the key into their parent's path parameters; one
    provider builder shared by concurrent requests sent each to the last key asked for."""
    graph = gateway(by_key, SlowCredentials())
    records = await asyncio.gather(*(graph.get_activity(f"a-{n}") for n in range(5)))
    assert [r.external_id for r in records if r is not None] == [f"a-{n}" for n in range(5)]


def batch_of(status: int, answers: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> Any:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/$batch"
        document = json.loads(request.content)
        sent.extend(document["requests"])
        return httpx.Response(status, json={"responses": answers(document["requests"])})

    return handler, sent


def throttled(request: dict[str, Any]) -> dict[str, Any]:
    error = {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}
    return {"id": request["id"], "status": 429, "headers": {"Retry-After": "2.128"}, "body": error}


async def test_a_batch_answered_424_still_gives_each_request_its_own_answer() -> None:
    """Graph's throttling page says a batch holding a throttled request fails with 424 as a whole; the
    batching page says 200. Either way the answers inside are read."""

    def answers(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        first, second = requests
        key = KEY.search(first["url"])
        assert key is not None
        external_id = unquote(key.group(1)).replace("''", "'")
        return [throttled(second), {"id": first["id"], "status": 200, "body": activity(external_id)}]

    handler, sent = batch_of(424, answers)
    first, second = await gateway(handler).get_activities(["o'neil/1", "b"])
    assert isinstance(first, ActivityRecord)
    assert first.external_id == "o'neil/1"
    assert isinstance(second, GraphError)
    assert (second.status, second.retry_after) == (429, 2.128)
    assert [r["url"] for r in sent] == [
        f"/employeeExperience/learningProviders/{PROVIDER}/learningCourseActivities"
        "(externalcourseActivityId='o%27%27neil%2F1')",
        f"/employeeExperience/learningProviders/{PROVIDER}/learningCourseActivities"
        "(externalcourseActivityId='b')",
    ]
    assert len({r["id"] for r in sent}) == 2


async def test_a_batch_throttled_as_a_whole_raises_with_its_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}
        return httpx.Response(429, json=error, headers={"Retry-After": "7"})

    with pytest.raises(GraphError) as refused:
        await gateway(handler).find_content_ids(["course-101"])
    assert (refused.value.status, refused.value.retry_after) == (429, 7)


async def test_a_request_the_batch_did_not_answer_is_a_failure_of_its_own() -> None:
    handler, _ = batch_of(200, lambda requests: [])
    [answer] = await gateway(handler).find_content_ids(["course-101"])
    assert isinstance(answer, GraphError)
    assert answer.status == 502


async def test_content_writes_go_as_json_bodies_with_their_content_type() -> None:
    from shared.graph.gateway import ContentWrite

    def answers(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": r["id"], "status": 200, "body": {"id": f"c{r['id']}"}} for r in requests]

    handler, sent = batch_of(200, answers)
    written = await gateway(handler).put_contents(
        [
            ("a", ContentWrite("A", "https://x.example/a", "en-us")),
            ("b", ContentWrite("B", "https://x.example/b", "en")),
        ]
    )
    assert written == ["c1", "c2"]
    content_types = [{k.lower(): v for k, v in r["headers"].items()}["content-type"] for r in sent]
    assert content_types == ["application/json", "application/json"]
    assert [(r["method"], r["body"]["title"]) for r in sent] == [("PATCH", "A"), ("PATCH", "B")]


def test_the_graph_client_has_no_retry_or_url_replace_handler() -> None:
    """Waiting is the queue's job, and the URL-replace handler puts learner identifiers on spans."""
    from kiota_http.middleware import RetryHandler, UrlReplaceHandler

    from shared.graph.msgraph_gateway import graph_middleware

    kinds = {type(handler) for handler in graph_middleware()}
    assert not kinds & {RetryHandler, UrlReplaceHandler}


async def test_a_created_activity_is_read_from_graphs_json_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        answer = {
            **activity(sent["externalcourseActivityId"]),
            "startedDateTime": "2026-11-01T10:00:00.1234567Z",
        }
        return httpx.Response(201, json=answer)

    record = await gateway(handler).create_activity("course-101", "learner", "content", _write())
    assert (record.id, record.external_id, record.completion_percentage) == (
        "id-course-101",
        "course-101",
        40,
    )
    assert record.started_at is not None
    assert record.started_at.tzinfo is not None


async def test_a_refused_create_keeps_graphs_code_and_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}
        return httpx.Response(429, json=error, headers={"Retry-After": "3"})

    with pytest.raises(GraphError) as refused:
        await gateway(handler).create_activity("course-101", "learner", "content", _write())
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (
        429,
        "TooManyRequests",
        3,
    )


@pytest.mark.parametrize("body", [b"<html>gateway</html>", b"[1, 2]"])
async def test_an_answer_that_is_not_an_activity_is_a_bad_gateway_not_a_crash(body: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    with pytest.raises(GraphError) as refused:
        await gateway(handler).get_activity("course-101")
    assert (refused.value.status, refused.value.code) == (502, "invalidResponse")


def _write() -> ActivityWrite:
    return ActivityWrite(status=CourseStatus.IN_PROGRESS, completion_percentage=40)


# Shaped like the 201 answer of "Create learningCourseActivity", example 2 (self-initiated course), on
# learn.microsoft.com/graph/api/employeeexperienceuser-post-learningcourseactivities (v1.0): its
# @odata.context, a null completedDateTime, an id of the form "<learner>:<guid>", +00:00 offsets and the
# `externalCourseActivityId` spelling. The values are this project's own.
DOCUMENTED_ANSWER = {
    "@odata.type": "#microsoft.graph.learningSelfInitiatedCourse",
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#learningProviders('"
    f"{PROVIDER}')/learningCourseActivities('3d5f0a1c-2b7e-4c86-9e41-0f2a6b8c7d13')$entity",
    "completedDateTime": None,
    "completionPercentage": 35,
    "externalCourseActivityId": "generic:ada:course-101",
    "id": "5e0b3f6a-7c21-4d89-b2e4-91a0c3d7f256:3d5f0a1c-2b7e-4c86-9e41-0f2a6b8c7d13",
    "learningContentId": "a8c4e2f0-1b3d-4e5f-8a7b-6c9d0e1f2a3b",
    "learningProviderId": PROVIDER,
    "learnerUserId": "5e0b3f6a-7c21-4d89-b2e4-91a0c3d7f256",
    "startedDateTime": "2026-10-02T08:15:00+00:00",
    "status": "inProgress",
}


async def test_a_documented_create_answer_reads_as_msgraph_sdks_own_model_reads_it() -> None:
    """The SDK's model is the oracle for reading Graph's JSON: the gateway reads the answer itself (for
    CPU), and must come to the same record the SDK's deserializer does."""
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
    from msgraph.generated.models.learning_course_activity import LearningCourseActivity

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json=DOCUMENTED_ANSWER)

    ours = await gateway(handler).create_activity("generic:ada:course-101", "learner", "content", _write())
    node = JsonParseNodeFactory().get_root_parse_node(
        "application/json", json.dumps(DOCUMENTED_ANSWER).encode()
    )
    sdk: Any = node.get_object_value(LearningCourseActivity)
    assert type(sdk).__name__ == "LearningSelfInitiatedCourse"
    assert ours == ActivityRecord(
        id=sdk.id,
        external_id=sdk.externalcourse_activity_id or sdk.additional_data["externalCourseActivityId"],
        learner_user_id=sdk.learner_user_id,
        learning_content_id=sdk.learning_content_id,
        status=CourseStatus(sdk.status.value),
        completion_percentage=sdk.completion_percentage,
        started_at=sdk.started_date_time,
        completed_at=sdk.completed_date_time,
    )


def _assignment_write(**overrides: Any) -> ActivityWrite:
    from datetime import UTC, datetime

    from shared.events.model import AssignmentType

    fields: dict[str, Any] = {
        "status": CourseStatus.NOT_STARTED,
        "completion_percentage": 20,
        "assignment_type": AssignmentType.REQUIRED,
        "assigned_at": datetime(2021, 5, 11, 22, 57, 17, tzinfo=UTC),
        "due_at": datetime(2022, 9, 22, 16, 5, tzinfo=UTC),
        "notes": "required assignment added for user",
        "assigner_user_id": "cea1684d-57dc-438d-a9d1-e666ec1a7f3d",
        **overrides,
    }
    return ActivityWrite(**fields)


def _capturing(status: int, answer: dict[str, Any] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append({"method": request.method, **body})
        return (
            httpx.Response(status, json={**body, "id": "a:1", **(answer or {})})
            if status == 201
            else httpx.Response(status)
        )

    return handler, sent


async def test_an_assignment_is_created_shaped_as_the_create_example_on_graphs_page() -> None:
    """ "Create learningCourseActivity", Example 1: dueDateTime a dateTimeTimeZone, notes an itemBody,
    learningProviderId, assignmentType, assignedDateTime and assignerUserId, no startedDateTime."""
    handler, sent = _capturing(201)
    record = await gateway(handler).create_activity("ext-1", "learner", "content", _assignment_write())
    [body] = sent
    assert body == {
        "method": "POST",
        "@odata.type": "#microsoft.graph.learningAssignment",
        "assignedDateTime": "2021-05-11T22:57:17+00:00",
        "assignmentType": "required",
        "assignerUserId": "cea1684d-57dc-438d-a9d1-e666ec1a7f3d",
        "completionPercentage": 20,
        "dueDateTime": {"dateTime": "2022-09-22T16:05:00.0000000", "timeZone": "UTC"},
        "externalcourseActivityId": "ext-1",
        "learningContentId": "content",
        "learningProviderId": PROVIDER,
        "learnerUserId": "learner",
        "notes": {"contentType": "text", "content": "required assignment added for user"},
        "status": "notStarted",
    }
    assert record.is_assignment
    assert (record.due_at, record.notes) == (_assignment_write().due_at, "required assignment added for user")


async def test_an_assignment_patch_never_sends_its_type_or_assigner_and_clears_with_null() -> None:
    handler, sent = _capturing(204)
    write = _assignment_write(assigned_at=None, notes=None, clear=frozenset({"notes"}))
    await gateway(handler).update_activity("a:1", write)
    [body] = sent
    assert body == {
        "method": "PATCH",
        "@odata.type": "#microsoft.graph.learningAssignment",
        "completionPercentage": 20,
        "dueDateTime": {"dateTime": "2022-09-22T16:05:00.0000000", "timeZone": "UTC"},
        "notes": None,
        "status": "notStarted",
    }


def test_a_due_date_in_another_zone_reads_back_in_utc() -> None:
    from datetime import UTC, datetime

    from shared.graph.gateway import due_from_json

    assert due_from_json({"dateTime": "2026-12-31T23:59:59.0000000", "timeZone": "Europe/Paris"}) == datetime(
        2026, 12, 31, 22, 59, 59, tzinfo=UTC
    )
    assert due_from_json({"dateTime": "2026-12-31T23:59:59", "timeZone": "Romance Standard Time"}) is None
