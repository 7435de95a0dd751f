"""`LearningGraph` over msgraph-sdk: the only module that imports msgraph.

Import it only from the queue side (through `build_learning_graph`): msgraph costs about a second on
first use, which an HTTP cold start must not pay.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware import (
    ParametersNameDecodingHandler,
    RedirectHandler,
    UserAgentHandler,
)
from kiota_http.middleware.middleware import BaseMiddleware
from kiota_http.middleware.options import (
    ResponseHandlerOption,
)
from kiota_http.observability_options import ObservabilityOptions
from msgraph.generated.employee_experience.learning_providers.item.learning_contents.learning_contents_request_builder import (  # noqa: E501
    LearningContentsRequestBuilder,
)
from msgraph.generated.models.assignment_type import AssignmentType as GraphAssignmentType
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.course_status import CourseStatus as GraphCourseStatus
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.learning_assignment import LearningAssignment
from msgraph.generated.models.learning_content import LearningContent
from msgraph.generated.models.learning_provider import LearningProvider
from msgraph.generated.models.learning_self_initiated_course import LearningSelfInitiatedCourse
from msgraph.generated.models.level import Level
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler

from shared.config.settings import GraphAuth, Settings
from shared.graph.errors import GraphError, GraphUnavailable
from shared.graph.gateway import ActivityRecord, ActivityWrite, ContentWrite, due_to_json, record_from_json
from shared.telemetry import record_graph_call

if TYPE_CHECKING:
    from kiota_abstractions.authentication import AuthenticationProvider

V = TypeVar("V")

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO, and Graph URLs carry learner identifiers: keep it to warnings.
logging.getLogger("httpx").setLevel(logging.WARNING)

SELF_INITIATED_COURSE = "#microsoft.graph.learningSelfInitiatedCourse"
ASSIGNMENT = "#microsoft.graph.learningAssignment"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Graph's own answer is usually well under this; longer means something is wrong, and the queue retries.
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: What the SDK's request builders pass to the adapter: any failure is read as an OData error.
_ERROR_MAPPING = {"XXX": ODataError}
# Filters on these need Graph's advanced query capabilities ("Advanced query capabilities on Microsoft
# Entra ID objects"): ConsistencyLevel: eventual and $count=true. Plain mail, UPN, otherMails and
# employeeId filters do not, and are answered from the consistent store, so they go without.
_ADVANCED_ATTRIBUTES = ("onPremisesSamAccountName", "extension_")


def odata_key(value: str) -> str:
    """A value for an OData string key: single quotes are doubled (the SDK does not do it)."""
    return value.replace("'", "''")


class MsGraphLearningGraph:
    def __init__(self, client: GraphServiceClient, registration_id: str) -> None:
        self._client = client
        self._registration_id = registration_id

    @property
    def _provider(self) -> Any:
        """A new builder for every request: the SDK's alternate-key builders (`..._with_external_id`)
        write their key into the path parameters of the builder they come from, and a request's URL is
        only expanded once it is signed, after an await. With one builder shared by concurrent requests
        (the queue side runs several at once) each would go to whichever key was written last."""
        return self._client.employee_experience.learning_providers.by_learning_provider_id(
            self._registration_id
        )

    async def find_user_id_by_upn(self, upn: str) -> str | None:
        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id"])
        config = RequestConfiguration(query_parameters=query)
        user = await _call("getUser", self._client.users.by_user_id(upn).get(config), not_found_is_none=True)
        return user.id if user is not None else None

    async def find_user_id_by(self, attribute: str, value: str) -> str | None:
        literal = f"'{odata_key(value)}'"
        condition = (
            f"otherMails/any(m:m eq {literal})" if attribute == "otherMails" else f"{attribute} eq {literal}"
        )
        advanced = attribute.startswith(_ADVANCED_ATTRIBUTES)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=condition, select=["id"], top=2, count=True if advanced else None
        )
        config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
        if advanced:
            config.headers.add("ConsistencyLevel", "eventual")
        page = await _call("listUsers", self._client.users.get(config))
        users = (page.value if page is not None else None) or []
        if len(users) > 1:
            raise GraphError(409, "ambiguousLearner", f"More than one user matches on {attribute}.")
        return users[0].id if users else None

    def _content(self, external_id: str) -> Any:
        return self._provider.learning_contents_with_external_id(odata_key(external_id))

    def _activity(self, external_id: str) -> Any:
        return self._provider.learning_course_activities_with_externalcourse_activity_id(
            odata_key(external_id)
        )

    async def find_content_id(self, external_id: str) -> str | None:
        content = await _call("getContent", self._content(external_id).get(), not_found_is_none=True)
        return content.id if content is not None else None

    async def first_content_id(self) -> str | None:
        """`GET …/learningContents?$top=1` (application LearningContent.Read.All): any one content."""
        query = LearningContentsRequestBuilder.LearningContentsRequestBuilderGetQueryParameters(top=1)
        config = RequestConfiguration(query_parameters=query)
        page = await _call("listContents", self._provider.learning_contents.get(config))
        contents = (page.value if page is not None else None) or []
        return str(contents[0].id) if contents and contents[0].id else None

    async def put_content(self, external_id: str, content: ContentWrite) -> str:
        builder = self._content(external_id)
        written = await _call("putContent", builder.patch(_content_body(content)))
        if written is None or not written.id:  # Graph answers 200 with the entity; an empty one is odd
            found = await self.find_content_id(external_id)
            if found is None:
                raise GraphError(502, "emptyResponse", "Graph returned no content for the PATCH.")
            return found
        return str(written.id)

    async def get_activity(self, external_id: str) -> ActivityRecord | None:
        request = self._activity(external_id).to_get_request_information()
        document = await _call("getActivity", self._json(request), not_found_is_none=True)
        return _read_record(document) if document is not None else None

    async def create_activity(
        self, external_id: str, learner_user_id: str, content_id: str, fields: ActivityWrite
    ) -> ActivityRecord:
        body = _body(fields, create=True)
        body.externalcourse_activity_id = external_id
        body.learner_user_id = learner_user_id
        body.learning_content_id = content_id
        # Listed as Required in the learningCourseActivity resource table; the registration id it must be.
        body.learning_provider_id = self._registration_id
        request = self._provider.learning_course_activities.to_post_request_information(body)
        created = await _call("createActivity", self._json(request))
        if created is None:  # pragma: no cover - Graph always returns the entity with 201
            raise GraphError(502, "emptyResponse", "Graph returned no entity for the POST.")
        return _read_record(created)

    async def _json(self, request: RequestInformation) -> Any:
        """Send a request the SDK built through its adapter (credentials, middleware, its error
        mapping) and read the answer's JSON ourselves: under cProfile the SDK's models took about 18 ms
        of CPU per activity read (Entity's table of deserializers is rebuilt for every object), and a
        new activity's worker CPU went from 62 to 32 ms without them (`python -m devtools.bench.cpu`).
        None for an answer without a body."""
        adapter: Any = self._client.request_adapter
        raw = await adapter.send_primitive_async(request, "bytes", _ERROR_MAPPING)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise GraphError(502, "invalidResponse", "Graph's answer is not JSON.") from None

    async def update_activity(self, activity_id: str, fields: ActivityWrite) -> None:
        builder = self._provider.learning_course_activities.by_learning_course_activity_id(activity_id)
        await _call("updateActivity", builder.patch(_body(fields)))

    async def delete_activity(self, activity_id: str) -> bool:
        builder = self._provider.learning_course_activities.by_learning_course_activity_id(activity_id)
        gone = await _call("deleteActivity", _deleted(builder.delete()), not_found_is_none=True)
        return gone is not None

    # JSON batches. msgraph-core's batch classes are not used, only the SDK's request builders (each
    # request's URL, OData key encoding and body) and its request adapter (credentials, middleware,
    # base URL): as of msgraph-core 1.5.2, importing them needs the undeclared package `deprecated`
    # (msgraph-sdk-python-core issue 1030), BatchResponseItem reads a JSON object body as None (so a
    # read's record and a failure's error code are lost), BatchRequestBuilder raises on a non-2xx batch
    # answer and drops the per-request answers it carries, and dependsOn is written as `depends_on`.
    # Answers are read from their JSON (`record_from_json`), not through the SDK's models: a profile
    # showed about 24 ms of CPU per entity there (Entity's deserializer table is rebuilt for every
    # object), more than a whole batch's round trip.

    async def get_activities(self, external_ids: Sequence[str]) -> list[ActivityRecord | GraphError | None]:
        requests = [self._activity(e).to_get_request_information() for e in external_ids]
        answers = await self._batch("getActivity", requests)
        return [_answer(a, record_from_json) for a in answers]

    async def find_content_ids(self, external_ids: Sequence[str]) -> list[str | GraphError | None]:
        requests = [self._content(e).to_get_request_information() for e in external_ids]
        answers = await self._batch("getContent", requests)
        return [_answer(a, _content_id) or None for a in answers]

    async def put_contents(self, contents: Sequence[tuple[str, ContentWrite]]) -> list[str | GraphError]:
        requests = [self._content(e).to_patch_request_information(_content_body(c)) for e, c in contents]
        answers = await self._batch("putContent", requests)
        results: list[str | GraphError] = []
        for (external_id, _), answer in zip(contents, answers, strict=True):
            written = _answer(answer, _content_id, not_found_is_none=False)
            # Graph answers 200 with the entity; without one, look it up as put_content does.
            results.append(written or await self._found_after_put(external_id))
        return results

    async def _found_after_put(self, external_id: str) -> str | GraphError:
        try:
            found = await self.find_content_id(external_id)
        except GraphError as exc:
            return exc
        return found or GraphError(502, "emptyResponse", "Graph returned no content for the PATCH.")

    async def _batch(self, operation: str, requests: Sequence[RequestInformation]) -> list[_BatchAnswer]:
        """POST the requests as one JSON batch; each one's answer, in the order asked."""
        if not requests:
            return []
        # RequestAdapter declares send_primitive_async without its return type.
        adapter: Any = self._client.request_adapter
        started = time.perf_counter()
        status = "unavailable"
        try:
            response = await adapter.send_primitive_async(_batch_request(requests), "bytes", None)
            if not isinstance(response, httpx.Response):  # pragma: no cover - the native handler's answer
                raise GraphError(502, "invalidBatchResponse", "The batch got no HTTP response.")
            status = str(response.status_code)
        except httpx.TimeoutException:
            raise GraphUnavailable("Graph did not answer in time.") from None
        except httpx.TransportError as exc:
            raise GraphUnavailable(f"Graph could not be reached ({type(exc).__name__}).") from None
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            record_graph_call("batch", status, elapsed)
        answers = _batch_answers(response, len(requests))
        for answer in answers:
            record_graph_call(operation, str(answer.status), elapsed)
        return answers


async def _call(operation: str, awaitable: Any, *, not_found_is_none: bool = False) -> Any:
    """Run one SDK request, time it, and translate its failures into the bridge's two error types."""
    started = time.perf_counter()
    status = "ok"
    try:
        return await awaitable
    except ODataError as exc:
        status = str(exc.response_status_code)
        if not_found_is_none and exc.response_status_code == 404:
            return None
        raise _graph_error(exc) from None
    except APIError as exc:
        status = str(exc.response_status_code)
        if not_found_is_none and exc.response_status_code == 404:
            return None
        # An answer without Graph's JSON error (empty, text, a gateway's HTML page) still carries
        # its Retry-After, which decides how long a throttled event waits.
        headers = {k.lower(): v for k, v in (exc.response_headers or {}).items()}
        raise GraphError(
            exc.response_status_code or 502,
            "apiError",
            exc.message or type(exc).__name__,
            _seconds(headers.get("retry-after")),
        ) from None
    except httpx.TimeoutException:
        status = "unavailable"
        raise GraphUnavailable("Graph did not answer in time.") from None
    except httpx.TransportError as exc:
        status = "unavailable"
        raise GraphUnavailable(f"Graph could not be reached ({type(exc).__name__}).") from None
    finally:
        record_graph_call(operation, status, (time.perf_counter() - started) * 1000)


def _graph_error(exc: ODataError) -> GraphError:
    """Graph's error in its enveloped shape (`{"error": {"code", "message"}}`), or flat as the learning
    API's error-codes page shows it (`{"code": "tooManyRequests", "message": "Retry after 2
    minutes"}`: the SDK keeps those members in the error's additional data)."""
    main = exc.error
    flat = _flat_error(getattr(exc, "additional_data", None))
    code = (main.code if main else None) or flat.get("code") or "unknown"
    message = (main.message if main else None) or flat.get("message") or "no message"
    headers = {k.lower(): v for k, v in (exc.response_headers or {}).items()}
    return GraphError(exc.response_status_code or 502, code, message, _seconds(headers.get("retry-after")))


def _flat_error(body: Any) -> dict[str, str]:
    """`code` and `message` of an error body, enveloped (`{"error": {...}}`) or flat (the learning
    API's error-codes page); only string members."""
    if not isinstance(body, dict):
        return {}
    error = body.get("error")
    fields = error if isinstance(error, dict) else body
    return {k: v for k in ("code", "message") if isinstance(v := fields.get(k), str) and v}


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds (Graph's throttling page shows fractions: `Retry-After: 2.128`); an
    HTTP date or anything else is no advice (the caller backs off on its own)."""
    try:
        seconds = float(retry_after) if retry_after else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


@dataclass(frozen=True)
class _BatchAnswer:
    """One request's answer inside a batch, as the batching page describes it."""

    status: int
    headers: dict[str, str]  # lower-case names
    body: Any


def _batch_request(requests: Sequence[RequestInformation]) -> RequestInformation:
    """POST {base}/$batch with `requests` numbered 1..n, each URL relative to the version root."""
    items = []
    for number, request in enumerate(requests, start=1):
        request.path_parameters["baseurl"] = ""
        method = request.http_method.value if request.http_method is not None else "GET"
        item: dict[str, Any] = {"id": str(number), "method": method, "url": request.url}
        headers = dict(request.request_headers or {})
        if request.content:
            item["body"] = json.loads(request.content)
        if headers:
            item["headers"] = headers
        items.append(item)
    batch = RequestInformation(Method.POST, "{+baseurl}/$batch")
    batch.headers.try_add("Content-Type", "application/json")
    batch.headers.try_add("Accept", "application/json")
    batch.content = json.dumps({"requests": items}).encode()
    # The raw answer, whatever its status: a batch answered 424 (as Graph's throttling page says one
    # with a throttled request is) still carries every request's own answer.
    batch.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
    return batch


def _batch_answers(response: httpx.Response, count: int) -> list[_BatchAnswer]:
    try:
        document = response.json()
    except ValueError:
        document = None
    answers = document.get("responses") if isinstance(document, dict) else None
    if not isinstance(answers, list):
        error = _flat_error(document)
        raise GraphError(
            response.status_code if response.status_code >= 400 else 502,
            str(error.get("code") or "invalidBatchResponse"),
            str(error.get("message") or "The batch answer has no responses."),
            _seconds(response.headers.get("retry-after")),
        )
    by_id = {str(a.get("id")).casefold(): a for a in answers if isinstance(a, dict)}
    missing = {"error": {"code": "batchAnswerMissing", "message": "The batch did not answer this request."}}
    result = []
    for number in range(1, count + 1):
        answer = by_id.get(str(number), {"status": 502, "body": missing})
        headers = answer.get("headers")
        headers = headers if isinstance(headers, dict) else {}
        status = answer.get("status")
        result.append(
            _BatchAnswer(
                status if isinstance(status, int) else 502,
                {str(k).lower(): str(v) for k, v in headers.items()},
                answer.get("body"),
            )
        )
    return result


def _answer(
    answer: _BatchAnswer, convert: Callable[[dict[str, Any]], V], *, not_found_is_none: bool = True
) -> V | GraphError | None:
    """A request's value, None for a 404 (when that means "no such thing") or an empty body, or the
    GraphError it failed with."""
    if answer.status == 404 and not_found_is_none:
        return None
    if not 200 <= answer.status < 300:
        error = _flat_error(answer.body)
        return GraphError(
            answer.status,
            str(error.get("code") or "unknown"),
            str(error.get("message") or "no message"),
            _seconds(answer.headers.get("retry-after")),
        )
    if not isinstance(answer.body, dict):
        return None
    try:
        return convert(answer.body)
    except (TypeError, ValueError):
        return GraphError(502, "invalidResponse", "Graph's answer could not be read.")


def _read_record(document: Any) -> ActivityRecord:
    if not isinstance(document, dict):
        raise GraphError(502, "invalidResponse", "Graph's answer is not an activity.")
    try:
        return record_from_json(document)
    except (TypeError, ValueError):
        raise GraphError(502, "invalidResponse", "Graph's answer could not be read.") from None


def _content_id(content: dict[str, Any]) -> str:
    return str(content.get("id") or "")


async def _deleted(awaitable: Any) -> bool:
    await awaitable
    return True


#: ActivityWrite field -> Graph's JSON name, for fields cleared with an explicit null.
_JSON_NAMES = {
    "completion_percentage": "completionPercentage",
    "started_at": "startedDateTime",
    "completed_at": "completedDateTime",
    "assigned_at": "assignedDateTime",
    "due_at": "dueDateTime",
    "notes": "notes",
}


def _body(fields: ActivityWrite, *, create: bool = False) -> LearningSelfInitiatedCourse | LearningAssignment:
    if fields.assignment_type is not None:
        return _assignment_body(fields, create=create)
    return _self_initiated_body(fields)


def _assignment_body(fields: ActivityWrite, *, create: bool) -> LearningAssignment:
    """A learningAssignment as the Create example on "Create learningCourseActivity" writes it:
    dueDateTime a dateTimeTimeZone object (UTC), notes an itemBody (text), assignmentType and
    assignerUserId on create only (the Update page lists neither as changeable), no startedDateTime."""
    due = due_to_json(fields.due_at) if fields.due_at is not None else None
    values: dict[str, Any] = {
        "status": GraphCourseStatus(fields.status.value) if fields.status is not None else None,
        "completion_percentage": fields.completion_percentage,
        "completed_date_time": fields.completed_at,
        "assigned_date_time": fields.assigned_at,
        "due_date_time": DateTimeTimeZone(date_time=due["dateTime"], time_zone=due["timeZone"])
        if due
        else None,
        "notes": ItemBody(content=fields.notes, content_type=BodyType.Text)
        if fields.notes is not None
        else None,
    }
    if create:
        values["assignment_type"] = (
            GraphAssignmentType(fields.assignment_type.value) if fields.assignment_type else None
        )
        values["assigner_user_id"] = fields.assigner_user_id
    body = LearningAssignment(odata_type=ASSIGNMENT, **{k: v for k, v in values.items() if v is not None})
    if fields.clear:
        body.additional_data = {_JSON_NAMES[name]: None for name in sorted(fields.clear)}
    return body


def _self_initiated_body(fields: ActivityWrite) -> LearningSelfInitiatedCourse:
    # Only set what is written: assigning None to an SDK model attribute that was never set puts a
    # snake_case key with null into the body (backing store quirk), which Graph rejects. The SDK drops
    # None, so a cleared field travels as an explicit JSON null in additional_data.
    values: dict[str, Any] = {
        "status": GraphCourseStatus(fields.status.value) if fields.status is not None else None,
        "completion_percentage": fields.completion_percentage,
        "started_date_time": fields.started_at,
        "completed_date_time": fields.completed_at,
    }
    body = LearningSelfInitiatedCourse(
        odata_type=SELF_INITIATED_COURSE, **{k: v for k, v in values.items() if v is not None}
    )
    if fields.clear:
        body.additional_data = {_JSON_NAMES[name]: None for name in sorted(fields.clear)}
    return body


def _content_body(content: ContentWrite) -> LearningContent:
    """Only the given fields (see `_body` on why None is never assigned); lists as lists."""
    values: dict[str, Any] = {
        "title": content.title,
        "content_web_url": content.content_web_url,
        "language_tag": content.language_tag,
        "description": content.description,
        "format": content.format,
        "source_name": content.source_name,
        "thumbnail_web_url": content.thumbnail_web_url,
        "level": Level(content.level) if content.level is not None else None,
        "number_of_pages": content.number_of_pages,
        "is_active": content.is_active,
        "is_premium": content.is_premium,
        "is_searchable": content.is_searchable,
        "additional_tags": list(content.additional_tags) if content.additional_tags is not None else None,
        "contributors": list(content.contributors) if content.contributors is not None else None,
        "skill_tags": list(content.skill_tags) if content.skill_tags is not None else None,
        "created_date_time": content.created_at,
        "last_modified_date_time": content.last_modified_at,
    }
    body = LearningContent(**{k: v for k, v in values.items() if v is not None})
    if content.duration is not None:
        # kiota writes a timedelta as str() ("1:30:00"), which Graph's Edm.Duration refuses: send ISO 8601.
        body.additional_data = {"duration": iso_duration(content.duration)}
    return body


def iso_duration(value: timedelta) -> str:
    """An Edm.Duration literal: PnDTnHnMnS, whole seconds."""
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    days, rest = divmod(abs(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    hms = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    if not days and not hms:
        return "PT0S"
    return f"{sign}P{f'{days}D' if days else ''}{f'T{hms}' if hms else ''}"


def build_learning_graph(settings: Settings) -> MsGraphLearningGraph:
    """One Graph client per worker: the httpx pool and token cache are reused across messages."""
    http_client = GraphClientFactory.create_with_custom_middleware(
        middleware=graph_middleware(), client=httpx.AsyncClient(timeout=_TIMEOUT)
    )
    adapter = GraphRequestAdapter(_auth_provider(settings), http_client)
    adapter.base_url = settings.graph_base_url
    # Graph URLs carry learner identifiers (/users/{upn}, $filter=mail eq '...'): kiota must not put
    # them on its spans.
    adapter.observability_options = ObservabilityOptions(include_euii_attributes=False)
    return MsGraphLearningGraph(
        GraphServiceClient(request_adapter=adapter), settings.provider_registration_id
    )


def graph_middleware() -> list[BaseMiddleware]:
    """The SDK's middleware the bridge needs, and only that: each handler costs a span and a hop on
    every request (a worker's CPU per event is mostly Graph requests). Left out:
    - the retry handler: it sleeps through up to three Retry-Afters of up to 180 s in one invocation
      (and retries POSTs); waiting is the queue's job (a throttled event goes back on the queue with
      the delay Graph asked for, shared.delivery.worker);
    - the URL-replace handler (a /users/TokenToReplace -> /me helper the bridge does not use), which
      puts the full URL, learner identifiers included, on its span whatever the EUII setting;
    - the headers- and body-inspection handlers, which only keep copies for callers that ask.
    Kept: redirects, `$`-parameter names decoded as Graph expects, the User-Agent and SdkVersion
    headers Graph asks clients to send."""
    return [RedirectHandler(), ParametersNameDecodingHandler(), UserAgentHandler(), GraphTelemetryHandler()]


def _auth_provider(settings: Settings) -> AuthenticationProvider:
    if settings.graph_auth is GraphAuth.ANONYMOUS:
        from kiota_abstractions.authentication import AnonymousAuthenticationProvider

        return AnonymousAuthenticationProvider()
    from azure.identity.aio import ManagedIdentityCredential
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )

    credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    host = httpx.URL(settings.graph_base_url).host
    return AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host])


# ---- learning providers (delegated only: the operators' `provider` commands) ---------------------

#: The delegated permission the provider calls need (Create/Update learningProvider).
PROVIDER_SCOPE = "https://graph.microsoft.com/LearningProvider.ReadWrite"
#: Reading a provider needs only this (Get learningProvider: "Delegated: LearningProvider.Read").
PROVIDER_READ_SCOPE = "https://graph.microsoft.com/LearningProvider.Read"


@dataclass(frozen=True)
class ProviderRecord:
    """A learningProvider as Graph answers it (resources/learningprovider)."""

    id: str
    display_name: str | None
    is_course_activity_sync_enabled: bool
    login_web_url: str | None
    logos: dict[str, str | None]


@dataclass(frozen=True)
class NewProvider:
    display_name: str
    square_logo_dark: str
    square_logo_light: str
    long_logo_dark: str
    long_logo_light: str
    login_web_url: str | None = None


class MsGraphProviders:
    """Register, read and switch sync of a learning provider, signed in as a user (delegated)."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client

    async def register(self, new: NewProvider) -> ProviderRecord:
        body = LearningProvider(
            display_name=new.display_name,
            square_logo_web_url_for_dark_theme=new.square_logo_dark,
            square_logo_web_url_for_light_theme=new.square_logo_light,
            long_logo_web_url_for_dark_theme=new.long_logo_dark,
            long_logo_web_url_for_light_theme=new.long_logo_light,
            login_web_url=new.login_web_url,
            is_course_activity_sync_enabled=False,
        )
        created = await _call(
            "createProvider", self._client.employee_experience.learning_providers.post(body)
        )
        if created is None or not created.id:
            raise GraphError(502, "emptyResponse", "Graph returned no provider for the POST.")
        return _provider_record(created)

    async def get(self, registration_id: str) -> ProviderRecord | None:
        builder = self._client.employee_experience.learning_providers.by_learning_provider_id(registration_id)
        found = await _call("getProvider", builder.get(), not_found_is_none=True)
        return _provider_record(found) if found is not None else None

    async def set_sync(self, registration_id: str, enabled: bool) -> None:
        builder = self._client.employee_experience.learning_providers.by_learning_provider_id(registration_id)
        await _call(
            "updateProvider", builder.patch(LearningProvider(is_course_activity_sync_enabled=enabled))
        )


def _provider_record(found: LearningProvider) -> ProviderRecord:
    return ProviderRecord(
        id=str(found.id),
        display_name=found.display_name,
        is_course_activity_sync_enabled=bool(found.is_course_activity_sync_enabled),
        login_web_url=found.login_web_url,
        logos={
            "squareLogoWebUrlForDarkTheme": found.square_logo_web_url_for_dark_theme,
            "squareLogoWebUrlForLightTheme": found.square_logo_web_url_for_light_theme,
            "longLogoWebUrlForDarkTheme": found.long_logo_web_url_for_dark_theme,
            "longLogoWebUrlForLightTheme": found.long_logo_web_url_for_light_theme,
        },
    )


def build_provider_client(
    base_url: str, credential: Any | None, *, read_only: bool = False
) -> MsGraphProviders:
    """A Graph client signed in with `credential` (a delegated azure-identity credential, sync or
    async) asking for PROVIDER_SCOPE (`read_only`: PROVIDER_READ_SCOPE, for `provider show` and
    doctor, so an operator consented to reading only can read); None: no token at all (the local
    sandbox, anonymous)."""
    http_client = GraphClientFactory.create_with_custom_middleware(
        middleware=graph_middleware(), client=httpx.AsyncClient(timeout=_TIMEOUT)
    )
    auth: AuthenticationProvider
    if credential is None:
        from kiota_abstractions.authentication import AnonymousAuthenticationProvider

        auth = AnonymousAuthenticationProvider()
    else:
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )

        host = httpx.URL(base_url).host
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[PROVIDER_READ_SCOPE if read_only else PROVIDER_SCOPE], allowed_hosts=[host]
        )
    adapter = GraphRequestAdapter(auth, http_client)
    adapter.base_url = base_url
    adapter.observability_options = ObservabilityOptions(include_euii_attributes=False)
    return MsGraphProviders(GraphServiceClient(request_adapter=adapter))
