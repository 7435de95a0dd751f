"""The sandbox's HTTP surface: the Graph v1.0 learning and user endpoints, plus `/_sandbox/*` controls.

Graph addresses records with OData keys in the path (`learningContents(externalId='...')`), which
ordinary routers do not parse, so requests are matched against the raw path with regular expressions
and keys are percent-decoded and un-escaped ('' -> ') the way Graph does.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devtools.graph_sandbox import rules
from devtools.graph_sandbox.batch import run_batch
from devtools.graph_sandbox.call import Call
from devtools.graph_sandbox.errors import (
    GraphHttpError,
    bad_request,
    error_response,
    not_found,
)
from devtools.graph_sandbox.faults import FaultInjector, FaultSettings
from devtools.graph_sandbox.schema import type_for, validate_write
from devtools.graph_sandbox.store import Conflict, Doc, Store

API = "/v1.0"
_PROVIDER = r"/employeeExperience/learningProviders/(?P<pid>[^/()]+)"
_ACTIVITY_TYPES = {
    "#microsoft.graph.learningSelfInitiatedCourse": "learningSelfInitiatedCourse",
    "#microsoft.graph.learningAssignment": "learningAssignment",
}
_CONTENT_TYPES = {"#microsoft.graph.learningContent": "learningContent"}
_ACTIVITY_FIELDS = (
    "externalcourseActivityId",
    "learnerUserId",
    "learningContentId",
    "learningProviderId",
    "status",
    "completionPercentage",
    "completedDateTime",
)

_ASSIGNMENT_FIELDS = ("assignedDateTime", "assignerUserId", "assignmentType", "dueDateTime", "notes")

Handler = Callable[["Sandbox", Call, dict[str, str]], Awaitable[web.Response]]


@dataclass(frozen=True)
class Route:
    kind: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class PasswordProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1)
    forceChangePasswordNextSignIn: bool = True


class NewUser(BaseModel):
    """POST /users as "Create user" (api/user-post-users) defines it: accountEnabled, displayName,
    mailNickname, userPrincipalName and passwordProfile are required (rules.USER_REQUIRED). The
    excerpt has no user schema, so other properties are kept as given; the password never is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str | None = None
    account_enabled: bool = Field(alias="accountEnabled")
    display_name: str = Field(alias="displayName", min_length=1)
    mail_nickname: str = Field(alias="mailNickname", min_length=1)
    user_principal_name: str = Field(alias="userPrincipalName", min_length=3)
    password_profile: PasswordProfile = Field(alias="passwordProfile", exclude=True)
    mail: str | None = None
    other_mails: list[str] = Field(default_factory=list, alias="otherMails")
    employee_id: str | None = Field(default=None, alias="employeeId")
    on_premises_sam_account_name: str | None = Field(default=None, alias="onPremisesSamAccountName")

    @model_validator(mode="after")
    def _only_extension_attributes_extra(self) -> NewUser:
        unknown = [k for k in (self.model_extra or {}) if not k.startswith("extension_")]
        if unknown:
            raise ValueError(f"unknown user property {unknown[0]!r}")
        return self


class Sandbox:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.faults = FaultInjector()
        self.log: deque[dict[str, Any]] = deque(maxlen=5000)
        self.batches = 0  # $batch requests so far: each one's number ties its requests' log entries to it


def _json(status: int, doc: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(doc), content_type="application/json")


def _body(call: Call) -> Any:
    try:
        return json.loads(call.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_request("The request body is not valid JSON.") from None


def _odata_key(raw: str) -> str:
    return unquote(raw).replace("''", "'")


def _provider(sandbox: Sandbox, pid: str) -> Doc:
    provider = sandbox.store.provider(pid)
    if provider is None:
        raise not_found(f"Learning provider {pid!r}")
    return provider


# ---- learning providers -----------------------------------------------------------------------


def _registered(sandbox: Sandbox, pid: str) -> Doc:
    """The provider a course activity call names (rules.require_registered_provider: an unknown
    registration id is the learning API's documented 400, not a 404)."""
    return rules.require_registered_provider(sandbox.store.provider(pid))


def _app_role(call: Call, type_name: object) -> None:
    """Course activity writes need the application permission of the record's type
    (rules.require_write_role, read from the token's `roles`)."""
    claims = rules.token_claims(call.headers.get("Authorization"))
    rules.require_write_role(claims, type_name if isinstance(type_name, str) else None)


def _delegated(call: Call) -> None:
    """Provider calls are delegated only (rules.require_delegated): an application token is refused."""
    rules.require_delegated(rules.token_claims(call.headers.get("Authorization")), call.method)


async def create_provider(sb: Sandbox, call: Call, _: dict[str, str]) -> web.Response:
    _delegated(call)
    body = _body(call)
    rules.check_new_provider(body)
    doc = {"isCourseActivitySyncEnabled": False, **body, "id": str(uuid.uuid4())}
    return _json(201, sb.store.put_provider(doc))


async def get_provider(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    _delegated(call)
    return _json(200, _provider(sb, p["pid"]))


async def patch_provider(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    _delegated(call)
    provider = _provider(sb, p["pid"])
    body = _body(call)
    rules.check_provider_update(body)
    sb.store.put_provider({**provider, **body, "id": provider["id"]})
    return web.Response(status=204)


# ---- course activities ------------------------------------------------------------------------


def _activity_view(doc: Doc) -> Doc:
    view = {"@odata.type": doc["@odata.type"], "id": doc["id"]}
    view.update({field: doc.get(field) for field in _ACTIVITY_FIELDS})
    if doc["@odata.type"].endswith("learningSelfInitiatedCourse"):
        view["startedDateTime"] = doc.get("startedDateTime")
    else:  # rules.RESOURCE_ASSIGNMENT: the assignment's own properties, null when not set
        view.update({field: doc.get(field) for field in _ASSIGNMENT_FIELDS})
    return view


def _find_activity(sb: Sandbox, p: dict[str, str]) -> Doc:
    pid = p["pid"]
    _registered(sb, pid)
    if "aid" in p:
        doc = sb.store.activity(pid, id=p["aid"])
    else:
        doc = sb.store.activity(pid, external_id=_odata_key(p["key"]))
    if doc is None:
        raise _unknown_activity(p.get("aid") or _odata_key(p["key"]))
    return doc


def _unknown_activity(key: str) -> GraphHttpError:
    """rules.ERROR_CODES, "Not found" (delete, get and update tables): 404 "The requested assignment
    {id} doesn't exist." for a course activity of either type (the page has one message for all)."""
    return GraphHttpError(404, "notFound", f"The requested assignment {key} doesn't exist.")


def _find_activity_anywhere(sb: Sandbox, aid: str) -> Doc:
    """rules.GET_ACTIVITY: get by id is not provider-scoped (GET /employeeExperience/
    learningCourseActivities/{learningCourseActivityId}); the sandbox looks in every provider's."""
    doc = sb.store.activity_by_id(aid)
    if doc is None:
        raise _unknown_activity(aid)
    return doc


def _tenant_checks(sb: Sandbox, call: Call, provider: Doc | None = None) -> None:
    """What every course activity call meets first (rules.ERROR_CODES): the tenant's plan, then (for
    writes, given the provider) the provider's sync."""
    rules.require_service_plan(sb.store.has_service_plan(), call.method)
    if provider is not None:
        rules.require_sync_enabled(provider)


def _check_activity_fields(sb: Sandbox, pid: str, body: Doc, method: str) -> None:
    rules.check_percentage(body)
    # Unknown learner or content ids: the pages list no error for them (unconfirmed). A tenant cannot
    # hold a record for a user or content that does not exist, so the sandbox answers 404 rather than
    # let a wrong id pass unseen.
    learner = body.get("learnerUserId")
    user = sb.store.user(learner) if learner is not None else None
    if learner is not None and user is None:
        raise not_found(f"User {learner!r}")
    content = body.get("learningContentId")
    if content is not None and sb.store.content(pid, id=content) is None:
        # ERROR_CODES: content another provider created is refused with its own 403.
        rules.require_content_of_provider(sb.store.content_provider(content), pid, method)
        raise not_found(f"Learning content {content!r}")
    if user is not None:
        rules.require_licence(sb.store.licensed(user["id"]), method)


async def create_activity(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    pid = p["pid"]
    body = _body(call)
    _app_role(call, body.get("@odata.type") if isinstance(body, dict) else None)
    _tenant_checks(sb, call, _registered(sb, pid))
    # CREATE_ACTIVITY: @odata.type is required; it picks learningAssignment or learningSelfInitiatedCourse.
    type_name = type_for(body.get("@odata.type") if isinstance(body, dict) else None, _ACTIVITY_TYPES)
    validate_write(type_name, body, writable_read_only=frozenset({"learningProviderId"}))
    rules.check_create_activity(pid, body)
    _check_activity_fields(sb, pid, body, call.method)
    doc = {**body, "id": str(uuid.uuid4()), "learningProviderId": pid}
    try:
        # The metadata declares externalcourseActivityId an alternate key, so two records cannot share
        # it; which status Graph answers for a duplicate is not documented (409 here, unconfirmed).
        sb.store.add_activity(pid, doc)
    except Conflict as exc:
        raise GraphHttpError(409, "Conflict", str(exc)) from None
    return _json(201, _activity_view(doc))


async def list_activities(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    _provider(sb, p["pid"])
    return _json(200, {"value": [_activity_view(d) for d in sb.store.activities(p["pid"])]})


async def get_activity(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    _registered(sb, p["pid"])
    _tenant_checks(sb, call)
    return _json(200, _activity_view(_find_activity(sb, p)))


async def get_activity_by_id(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    """rules.GET_ACTIVITY: `GET /employeeExperience/learningCourseActivities/{id}`, the address the
    Get page documents for an id (by external id it is provider-scoped, as `get_activity` serves)."""
    _tenant_checks(sb, call)
    return _json(200, _activity_view(_find_activity_anywhere(sb, p["aid"])))


async def patch_activity(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    _tenant_checks(sb, call, _registered(sb, p["pid"]))
    doc = _find_activity(sb, p)
    _app_role(call, doc["@odata.type"])
    body = _body(call)
    type_name = type_for(body.get("@odata.type") if isinstance(body, dict) else None, _ACTIVITY_TYPES)
    rules.check_update_activity(doc, body)
    validate_write(type_name, body)
    _check_activity_fields(sb, p["pid"], body, call.method)
    # ERROR_CODES, update table: the licence answer names the record's learner (an update cannot
    # change who it is for).
    rules.require_licence(sb.store.licensed(doc["learnerUserId"]), call.method)
    # UPDATE_ACTIVITY's example: a property sent as null is cleared.
    updated = {**doc, **body}
    sb.store.replace_activity(p["pid"], {k: v for k, v in updated.items() if v is not None})
    return web.Response(status=204)


async def delete_activity(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    """DELETE_ACTIVITY: by the course activity id; 204 No Content."""
    _tenant_checks(sb, call, _registered(sb, p["pid"]))
    doc = _find_activity(sb, p)
    _app_role(call, doc["@odata.type"])
    sb.store.delete_activity(p["pid"], doc["id"])
    return web.Response(status=204)


# ---- learning contents ------------------------------------------------------------------------


async def get_content(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    _provider(sb, p["pid"])
    if "cid" in p:
        doc = sb.store.content(p["pid"], id=p["cid"])
    else:
        doc = sb.store.content(p["pid"], external_id=_odata_key(p["key"]))
    if doc is None:
        raise not_found("Learning content")
    return _json(200, doc)


async def list_contents(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    """rules.LIST_CONTENTS: the provider's contents (application LearningContent.Read.All); `$top`."""
    _provider(sb, p["pid"])
    try:
        top = max(0, int(call.query.get("$top", "100")))
    except ValueError:
        raise bad_request("$top must be a number.") from None
    return _json(200, {"value": sb.store.contents(p["pid"])[:top]})


async def put_content(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    """PATCH learningContents(externalId='...'): creates the content or updates it (Graph's ingest)."""
    pid = p["pid"]
    _provider(sb, pid)
    external_id = _odata_key(p["key"])
    body = _body(call)
    if isinstance(body, dict) and "@odata.type" in body:  # UPDATE_CONTENT: optional (see rules)
        type_for(body["@odata.type"], _CONTENT_TYPES)
    validate_write("learningContent", body)
    existing = sb.store.content(pid, external_id=external_id)
    if existing is None:
        rules.check_new_content(body)
    doc = {**(existing or {"id": str(uuid.uuid4())}), **body, "externalId": external_id}
    return _json(200, sb.store.put_content(pid, doc))


# ---- users ------------------------------------------------------------------------------------

_FILTER = re.compile(
    r"^\s*(?:(?P<field>mail|userPrincipalName|employeeId|onPremisesSamAccountName|extension_\w+)\s+eq"
    r"|otherMails/any\((?P<var>\w+):(?P=var)\s+eq)\s+'(?P<value>(?:[^']|'')*)'\)?\s*$"
)
_CASE_INSENSITIVE = {"mail", "userPrincipalName", "otherMails"}


def _select(doc: Doc, call: Call) -> Doc:
    fields = [f for f in call.query.get("$select", "").split(",") if f]
    return {k: v for k, v in doc.items() if not fields or k in fields or k == "id"}


async def get_user(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    doc = sb.store.user(unquote(p["uid"]))
    if doc is None:
        raise GraphHttpError(
            404, "Request_ResourceNotFound", f"Resource '{unquote(p['uid'])}' does not exist."
        )
    return _json(200, _select(doc, call))


async def list_users(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    raw_filter = call.query.get("$filter")
    if raw_filter is None:
        raise bad_request("The sandbox lists users only with $filter (mail, userPrincipalName, employeeId).")
    match = _FILTER.match(raw_filter)
    if match is None:
        raise GraphHttpError(400, "Request_UnsupportedQuery", f"Unsupported query: {raw_filter}")
    field = match.group("field") or "otherMails"
    rules.check_user_query(field, call.headers.get("ConsistencyLevel"), call.query.get("$count"))
    users = sb.store.users_where(field, match.group("value").replace("''", "'"), field in _CASE_INSENSITIVE)
    top = int(call.query.get("$top", "100"))
    return _json(200, {"value": [_select(u, call) for u in users[:top]]})


async def create_user(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    try:
        user = NewUser.model_validate(_body(call), by_alias=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise bad_request(f"Invalid user: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    try:
        doc = sb.store.add_user(user.model_dump(by_alias=True, exclude_none=True))
    except Conflict as exc:
        raise GraphHttpError(400, "Request_BadRequest", str(exc)) from None
    return _json(201, doc)


async def delete_user(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    """DELETE /users/{id | userPrincipalName} (rules.DELETE_USER): 204 No Content. Graph moves the
    user to deleted items for 30 days, where user lookups and lists no longer find it; the sandbox
    keeps no deleted items. Course activities that name the user stay as they are (the pages say
    nothing of them: unconfirmed)."""
    key = unquote(p["uid"])
    if not sb.store.delete_user(key):
        raise GraphHttpError(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist.")
    return web.Response(status=204)


# ---- JSON batching ----------------------------------------------------------------------------


async def post_batch(sb: Sandbox, call: Call, p: dict[str, str]) -> web.Response:
    """POST /$batch: each request runs through `execute` as if sent alone (devtools.graph_sandbox.batch)."""
    requests = rules.check_batch(_body(call))
    observer = "x-sandbox-client" in call.headers

    async def one(item: Call) -> web.Response:
        looking_on = observer or "x-sandbox-client" in item.headers
        return await execute(sb, item, observer=looking_on, batch=int(p["batch"]))

    return await run_batch(requests, API, one)


ROUTES: list[Route] = [
    Route(kind, method, re.compile(f"^{API}{pattern}$"), handler)
    for kind, method, pattern, handler in [
        ("providers", "POST", r"/employeeExperience/learningProviders", create_provider),
        ("provider", "GET", _PROVIDER, get_provider),
        ("provider", "PATCH", _PROVIDER, patch_provider),
        ("activities", "POST", _PROVIDER + r"/learningCourseActivities", create_activity),
        ("activities", "GET", _PROVIDER + r"/learningCourseActivities", list_activities),
        (
            "activityById",
            "GET",
            r"/employeeExperience/learningCourseActivities/(?P<aid>[^/()]+)",
            get_activity_by_id,
        ),
        *[
            (kind, method, _PROVIDER + suffix, handler)
            for kind, suffix in [
                ("activityById", r"/learningCourseActivities/(?P<aid>[^/()]+)"),
                (
                    "activityByExternalId",
                    r"/learningCourseActivities\(externalc(?:o|O)urseActivityId='(?P<key>.*)'\)",
                ),
            ]
            for method, handler in [
                ("GET", get_activity),
                ("PATCH", patch_activity),
                ("DELETE", delete_activity),
            ]
        ],
        ("contents", "GET", _PROVIDER + r"/learningContents", list_contents),
        ("contentById", "GET", _PROVIDER + r"/learningContents/(?P<cid>[^/()]+)", get_content),
        (
            "contentByExternalId",
            "GET",
            _PROVIDER + r"/learningContents\(externalId='(?P<key>.*)'\)",
            get_content,
        ),
        (
            "contentByExternalId",
            "PATCH",
            _PROVIDER + r"/learningContents\(externalId='(?P<key>.*)'\)",
            put_content,
        ),
        ("batch", "POST", r"/(?:\$|%24)batch", post_batch),
        ("users", "GET", r"/users", list_users),
        ("users", "POST", r"/users", create_user),
        ("user", "GET", r"/users/(?P<uid>[^/]+)", get_user),
        ("user", "DELETE", r"/users/(?P<uid>[^/]+)", delete_user),
    ]
]


async def dispatch(request: web.Request) -> web.Response:
    sb: Sandbox = request.app["sandbox"]
    call = await Call.of(request)
    return await execute(sb, call, observer="x-sandbox-client" in request.headers)


async def execute(sb: Sandbox, call: Call, *, observer: bool, batch: int | None = None) -> web.Response:
    """Route one request (sent alone, or one of a batch's) through fault injection, its handler and
    the log. Tools looking on (`x-sandbox-client`) never take injected faults. A batch pays the
    injected latency once, as Graph runs a batch's requests together; each of its requests draws its
    own faults (Graph evaluates each against throttling on its own, JSON_BATCHING), the batch itself
    only scripted ones."""
    path = call.raw_path
    matching = [(route, m) for route in ROUTES if (m := route.pattern.match(path)) is not None]
    kind = matching[0][0].kind if matching else "unknown"
    if kind == "batch":
        sb.batches += 1
        batch = sb.batches
    try:
        if not observer:
            inside = batch is not None and kind != "batch"
            await sb.faults.before(call.method, path, kind, delay=not inside, draw=kind != "batch")
        route_match = next(((r, m) for r, m in matching if r.method == call.method), None)
        if route_match is None:
            if matching:
                raise GraphHttpError(405, "Request_BadRequest", f"{call.method} is not supported here.")
            raise GraphHttpError(400, "BadRequest", f"Resource not found for the segment in {path!r}.")
        route, match = route_match
        params = {**match.groupdict(), **({"batch": str(batch)} if kind == "batch" else {})}
        response = await route.handler(sb, call, params)
        injected = False
    except GraphHttpError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.headers)
        injected = exc.injected
    if not injected:
        sb.faults.requests[f"{call.method} {kind} {response.status}"] += 1
    sb.log.append(
        {
            "method": call.method,
            "kind": kind,
            "path": unquote(path),
            "query": dict(call.query),
            "consistencyLevel": call.headers.get("ConsistencyLevel"),
            # What the bridge wrote, as Graph received it (tests read it: status on every PATCH...).
            "body": _logged_body(call) if kind != "batch" else None,
            "status": response.status,
            "injected": injected,
            # Tools that look at the sandbox mark their requests, so logs can leave them out.
            "client": call.headers.get("x-sandbox-client", "bridge"),
            # The $batch a request came in (its number, shared with the batch's own entry), or None.
            "batch": batch,
        }
    )
    return response


def _logged_body(call: Call) -> Any:
    if call.method not in ("POST", "PATCH") or not call.body:
        return None
    try:
        body = json.loads(call.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(body, dict):
        body.pop("passwordProfile", None)  # a user's password is never kept, not even in the log
    return body


# ---- controls ---------------------------------------------------------------------------------


class Seed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: list[Doc] = Field(default_factory=list)
    users: list[Doc] = Field(default_factory=list)
    contents: dict[str, list[Doc]] = Field(default_factory=dict, description="provider id -> contents")


class TenantSettings(BaseModel):
    """`POST /_sandbox/tenant`: what the tenant has, beside its Graph records (each field optional;
    what is left out stays as it was). The answers they lead to are the learning API's documented
    ones (rules.ERROR_CODES): a tenant without a plan, an unlicensed learner, a provider whose sync is
    off. Every user is licensed and the tenant has its plan until told otherwise."""

    model_config = ConfigDict(extra="forbid")

    service_plan: bool | None = Field(default=None, alias="servicePlan")
    #: user id or userPrincipalName -> licensed (a Viva Learning licence) or not
    licences: dict[str, bool] = Field(default_factory=dict)
    #: provider id -> isCourseActivitySyncEnabled
    course_activity_sync: dict[str, bool] = Field(default_factory=dict, alias="courseActivitySync")


def _tenant_view(sb: Sandbox) -> Doc:
    return {"servicePlan": sb.store.has_service_plan(), "unlicensedUsers": sb.store.unlicensed()}


def _set_tenant(sb: Sandbox, settings: TenantSettings) -> None:
    """Everything checked before anything changes: an unknown user or provider changes nothing."""
    users = {}
    for key in settings.licences:
        user = sb.store.user(key)
        if user is None:
            raise not_found(f"User {key!r}")
        users[key] = user["id"]
    providers = {pid: _provider(sb, pid) for pid in settings.course_activity_sync}
    if settings.service_plan is not None:
        sb.store.set_service_plan(settings.service_plan)
    for key, licensed in settings.licences.items():
        sb.store.set_licensed(users[key], licensed)
    for pid, enabled in settings.course_activity_sync.items():
        sb.store.put_provider({**providers[pid], "isCourseActivitySyncEnabled": enabled})


async def _tenant(sb: Sandbox, request: web.Request) -> web.Response:
    if request.method == "POST":
        try:
            _set_tenant(sb, TenantSettings.model_validate(_body(await Call.of(request)) or {}))
        except ValidationError as exc:
            return _json(400, {"errors": exc.errors(include_url=False, include_context=False)})
        except GraphHttpError as exc:
            return _json(exc.status, {"error": exc.message})
    return _json(200, _tenant_view(sb))


async def control(request: web.Request) -> web.Response:
    sb: Sandbox = request.app["sandbox"]
    action = request.match_info["action"]
    if action == "health":
        return _json(200, {"status": "ok"})
    if action == "faults" and request.method == "GET":
        return _json(200, sb.faults.settings.model_dump(by_alias=True))
    if action == "faults":
        try:
            sb.faults.configure(FaultSettings.model_validate(_body(await Call.of(request)) or {}))
        except ValidationError as exc:
            return _json(400, {"errors": exc.errors(include_url=False, include_context=False)})
        return _json(200, sb.faults.settings.model_dump(by_alias=True))
    if action == "stats":
        return _json(200, sb.faults.stats())
    if action == "requests":
        return _json(200, {"value": list(sb.log)})
    if action == "reset" and request.method == "POST":
        sb.store.reset()
        sb.faults.configure(FaultSettings())
        sb.faults.reset_stats()
        sb.log.clear()
        return _json(200, {"status": "reset"})
    if action == "reset-stats" and request.method == "POST":
        sb.faults.reset_stats()
        sb.log.clear()
        return _json(200, {"status": "reset"})
    if action == "seed" and request.method == "POST":
        return await _seed(sb, request)
    if action == "tenant" and request.method in ("GET", "POST"):
        return await _tenant(sb, request)
    return _json(404, {"error": f"unknown control {request.method} {action}"})


async def _seed(sb: Sandbox, request: web.Request) -> web.Response:
    try:
        _seed_document(sb, Seed.model_validate(_body(await Call.of(request))))
    except ValidationError as exc:
        return _json(400, {"errors": exc.errors(include_url=False, include_context=False)})
    except GraphHttpError as exc:
        return _json(exc.status, {"error": exc.message})
    return _json(200, {"status": "seeded"})


def _seed_document(sb: Sandbox, seed: Seed) -> None:
    """Create providers, users and contents at once, each checked as its Graph write would be."""
    for provider in seed.providers:
        sb.store.put_provider({"isCourseActivitySyncEnabled": True, **provider})
    for user in seed.users:
        if sb.store.user(user.get("userPrincipalName", "")) is None:
            sb.store.add_user(_seeded_user(user))
    for pid, contents in seed.contents.items():
        _provider(sb, pid)
        for content in contents:
            body = dict(content)
            validate_write("learningContent", body)
            existing = sb.store.content(pid, external_id=body["externalId"])
            sb.store.put_content(pid, {**(existing or {"id": str(uuid.uuid4())}), **body})


def _seeded_user(user: Doc) -> Doc:
    """A seed lists directory users as they are, not how they were created: the create-only fields
    Graph requires (mailNickname, passwordProfile, accountEnabled) get defaults, then the user is
    checked as POST /users would check it."""
    upn = str(user.get("userPrincipalName", ""))
    defaults = {
        "accountEnabled": True,
        "mailNickname": upn.split("@", 1)[0] or "user",
        "passwordProfile": {"password": uuid.uuid4().hex},
    }
    return NewUser.model_validate({**defaults, **user}).model_dump(by_alias=True, exclude_none=True)


def create_app(store: Store | None = None) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app["sandbox"] = Sandbox(store or Store())
    app.router.add_route("*", "/_sandbox/{action}", control)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
