"""The handler the bench compares the bridge with: a competent first version of this service, one HTTP
function that does all the work before it answers.

It verifies the Standard Webhooks signature, validates the event, then, inline and with msgraph-sdk
(one client per process, built on first use): finds the learner by `mail`, finds the course's
content by external id, looks the record up by its external id, and POSTs it or PATCHes it; then
answers 200. No queue, no state store, no caches, no merge rules: a redelivery or an event arriving
late simply overwrites. It speaks the bridge's generic format (one event per request, learners by
email) so that the same sender drives both.

Served by the dev host as a function app of its own (`devtools.bench.stack`), never deployed.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from typing import Any

import azure.functions as func
import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.course_status import CourseStatus
from msgraph.generated.models.learning_self_initiated_course import LearningSelfInitiatedCourse
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


class _Learner(BaseModel):
    email: str


class _Course(BaseModel):
    external_id: str = Field(alias="externalId")


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(alias="eventId")
    learner: _Learner
    course: _Course
    status: str
    completion_percentage: int | None = Field(default=None, alias="completionPercentage")


class _NotFound(Exception):
    pass


@functools.cache
def _graph() -> GraphServiceClient:
    http_client = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(timeout=30))
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), http_client)
    adapter.base_url = os.environ["NAIVE_GRAPH_BASE_URL"]
    return GraphServiceClient(request_adapter=adapter)


@app.function_name("naive_webhook")
@app.route(route="webhooks/{source}", methods=["POST"])
async def webhook(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    headers = {name.lower(): value for name, value in req.headers.items()}
    try:
        Webhook(os.environ["NAIVE_WEBHOOK_SECRET"]).verify(body, headers)
        event = _Event.model_validate_json(body)
    except (WebhookVerificationError, ValueError):  # a malformed signature header is a ValueError
        return func.HttpResponse(status_code=401)
    except ValidationError:
        return func.HttpResponse(status_code=400)
    try:
        record_id = await _upsert(event)
    except _NotFound as exc:
        return func.HttpResponse(str(exc), status_code=422)
    except APIError as exc:  # ODataError included
        return func.HttpResponse(f"Graph answered {exc.response_status_code}", status_code=502)
    return func.HttpResponse(json.dumps({"id": record_id}), status_code=200, mimetype="application/json")


async def _upsert(event: _Event) -> str:
    graph = _graph()
    provider = graph.employee_experience.learning_providers.by_learning_provider_id(
        os.environ["NAIVE_PROVIDER_ID"]
    )
    user_id = await _user_id(graph, event.learner.email)
    course_key = event.course.external_id.replace("'", "''")
    content = await provider.learning_contents_with_external_id(course_key).get()
    if content is None or not content.id:
        raise _NotFound("unknown course")
    external_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"naive:{user_id}:{event.course.external_id}"))
    try:
        existing = await provider.learning_course_activities_with_externalcourse_activity_id(
            external_id
        ).get()
    except ODataError as exc:
        if exc.response_status_code != 404:
            raise
        existing = None
    body = LearningSelfInitiatedCourse(
        odata_type="#microsoft.graph.learningSelfInitiatedCourse",
        status=CourseStatus(event.status),
        **_percentage(event),
    )
    if existing is not None and existing.id:
        await provider.learning_course_activities.by_learning_course_activity_id(existing.id).patch(body)
        return existing.id
    body.externalcourse_activity_id = external_id
    body.learner_user_id = user_id
    body.learning_content_id = content.id
    created = await provider.learning_course_activities.post(body)
    return str(created.id if created is not None else "")


async def _user_id(graph: GraphServiceClient, email: str) -> str:
    literal = email.replace("'", "''")
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter=f"mail eq '{literal}'", select=["id"]
    )
    page = await graph.users.get(RequestConfiguration(query_parameters=query))
    users = (page.value if page is not None else None) or []
    if not users:
        raise _NotFound("unknown learner")
    return str(users[0].id)


def _percentage(event: _Event) -> dict[str, Any]:
    return (
        {} if event.completion_percentage is None else {"completion_percentage": event.completion_percentage}
    )
