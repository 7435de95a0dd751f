"""What Graph's documentation says about each call the bridge makes, one check per rule, each citing
its page (Graph v1.0 API reference on learn.microsoft.com, or its source in
microsoftgraph/microsoft-graph-docs-contrib: `api-reference/v1.0/api/*.md`, `resources/*.md`).

The sandbox speaks for the documentation, not for the bridge: where a page says Required, it refuses
without it; where the pages are silent or contradict each other, it is lenient and says so here.
The rule list with its status (documented / unconfirmed) is in docs/local/sandbox.md.
"""

from __future__ import annotations

import re
from typing import Any

from devtools.graph_sandbox.errors import GraphHttpError, bad_request

Doc = dict[str, Any]

SELF_INITIATED = "#microsoft.graph.learningSelfInitiatedCourse"
ASSIGNMENT = "#microsoft.graph.learningAssignment"

# Pages, as cited below.
RESOURCE_SELF_INITIATED = "resources/learningselfinitiatedcourse"
RESOURCE_ACTIVITY = "resources/learningcourseactivity"
RESOURCE_ASSIGNMENT = "resources/learningassignment"
RESOURCE_DATE_TIME_TIME_ZONE = "resources/datetimetimezone"
RESOURCE_ITEM_BODY = "resources/itembody"
CREATE_ACTIVITY = "api/employeeexperienceuser-post-learningcourseactivities"
UPDATE_ACTIVITY = "api/learningcourseactivity-update"
DELETE_ACTIVITY = "api/learningcourseactivity-delete"
GET_ACTIVITY = "api/learningcourseactivity-get"
UPDATE_CONTENT = "api/learningprovider-update-learningcontents"
CREATE_USER = "api/user-post-users"
DELETE_USER = "api/user-delete"
ADVANCED_QUERIES = "graph/aad-advanced-queries"
JSON_BATCHING = "graph/json-batching"
THROTTLING = "graph/throttling"
ERROR_CODES = "resources/learningcourseactivity-error-codes"


def require_sync_enabled(provider: Doc) -> None:
    """Create, Update and Delete learningCourseActivity: "A provider can only manage learning course
    activities when isCourseActivitySyncEnabled is set to true"; their error tables answer 400 "This
    provider isn't enabled for the given tenant" (CREATE_ACTIVITY, UPDATE_ACTIVITY, DELETE_ACTIVITY).
    The exact status per method is unconfirmed; the sandbox uses the documented 400 for all three."""
    if not provider.get("isCourseActivitySyncEnabled"):
        raise GraphHttpError(400, "BadRequest", "This provider isn't enabled for the given tenant.")


def require_registered_provider(provider: Doc | None) -> Doc:
    """ERROR_CODES, create, delete, get and update tables: 400 "There was an issue with your request.
    Make sure the registrationId you entered is valid or registered for your tenant." when the URL's
    registrationId names no provider of the tenant (the get and update tables leave out the final full
    stop; the sandbox writes it, as create and delete do). The code column says Bad request."""
    if provider is None:
        raise GraphHttpError(
            400,
            "BadRequest",
            "There was an issue with your request. Make sure the registrationId you entered is valid or "
            "registered for your tenant.",
        )
    return provider


def require_service_plan(has_plan: bool, method: str) -> None:
    """ERROR_CODES: every course activity call (create, delete, get, update) answers 403 "You don't
    have an adequate service plan for this request." in a tenant without a plan that includes Viva
    Learning; the delete table spells it "You don't have a service plan adequate for this request.",
    and so does the sandbox for a DELETE. The code column says Forbidden."""
    if not has_plan:
        message = (
            "You don't have a service plan adequate for this request."
            if method == "DELETE"
            else "You don't have an adequate service plan for this request."
        )
        raise GraphHttpError(403, "Forbidden", message)


def require_licence(licensed: bool, method: str) -> None:
    """ERROR_CODES, create and update tables: 403 when "the user for which the assignment is being
    created doesn't have a premium license". Create spells it "User License isn't valid to perform the
    operation" (in the Code column), the update table "The user license is not valid to perform the
    operation"; the sandbox answers a create with "The user license isn't valid to perform the
    operation" (the docs' usual spelling, the one the issue threads quote) and an update with the
    update table's words, code Forbidden. The tables name assignments; that a self-initiated course
    gets the same answer is unconfirmed (the pages give no other). Delete and get list no licence
    answer: none here."""
    if not licensed:
        message = (
            "The user license is not valid to perform the operation"
            if method == "PATCH"
            else "The user license isn't valid to perform the operation"
        )
        raise GraphHttpError(403, "Forbidden", message)


def require_content_of_provider(content_provider: str | None, provider_id: str, method: str) -> None:
    """ERROR_CODES, create and update tables: 403 "The provider isn't valid to create course activity
    for the given learning content" (update: "is not") "when the registrationId/learningProviderId
    doesn't match the provider with which the learningContent is created". `content_provider`: the
    provider the content was created under, None when no provider has it (answered elsewhere)."""
    if content_provider is not None and content_provider != provider_id:
        verb = "is not" if method == "PATCH" else "isn't"
        raise GraphHttpError(
            403,
            "Forbidden",
            f"The provider {verb} valid to create course activity for the given learning content",
        )


def throttled_message(minutes: int) -> str:
    """ERROR_CODES: 429 `{"code": "tooManyRequests", "message": "Retry after {noOfMinutes} minutes"}`
    and 503 the same with `serviceUnavailable`, on every course activity call; no Retry-After header
    is documented (Graph's general THROTTLING page documents one: a scripted fault may add it)."""
    return f"Retry after {minutes} minutes"


def check_create_activity(provider_id: str, body: Doc) -> None:
    """The rules of POST .../learningCourseActivities that the schema alone does not carry."""
    # CREATE_ACTIVITY: "learnerUserId, learningContentId and status are required" for both types;
    # resources/learningcourseactivity-error-codes: a missing one is 400 badRequest "Input field
    # {fieldName} is required".
    missing = [k for k in ("learnerUserId", "learningContentId", "status") if body.get(k) is None]
    if missing:
        raise GraphHttpError(400, "badRequest", f"Input field {missing[0]} is required")
    # RESOURCE_ACTIVITY lists learningProviderId as Required, the self-initiated example leaves it out:
    # contradictory, so both are accepted. A value other than the provider in the path is refused: the
    # pages do not say which one Graph would keep, and writing into another provider is never right.
    given = body.get("learningProviderId")
    if given is not None and given != provider_id:
        raise bad_request("learningProviderId must be the registration id of the provider in the URL.")
    check_self_initiated_status(body)
    if body.get("@odata.type") == ASSIGNMENT:
        check_new_assignment(body)


def check_new_assignment(body: Doc) -> None:
    """POST of a learningAssignment (CREATE_ACTIVITY, RESOURCE_ASSIGNMENT)."""
    # CREATE_ACTIVITY: assignmentType, learnerUserId, learningContentId, learningProviderId and status
    # are Required for an assignment; resources/learningcourseactivity-error-codes: a missing one is 400
    # badRequest "Input field {fieldName} is required". (learningProviderId is required here, unlike on
    # a self-initiated course, where the page's own example leaves it out.)
    for name in ("assignmentType", "learningProviderId"):
        if body.get(name) is None:
            raise GraphHttpError(400, "badRequest", f"Input field {name} is required")
    # RESOURCE_ASSIGNMENT: assignmentType is required or recommended (unknownFutureValue is the enum's
    # sentinel). peerRecommended is only returned (with Prefer: include-unknown-enum-members); whether
    # Graph refuses it on input is unconfirmed: accepted.
    if body["assignmentType"] not in ("required", "recommended", "peerRecommended"):
        raise GraphHttpError(400, "badRequest", "Input field assignmentType is invalid")
    check_assignment_fields(body)


def check_assignment_fields(body: Doc) -> None:
    """dueDateTime and notes of a learningAssignment, on create and update. Every example
    (CREATE_ACTIVITY, UPDATE_ACTIVITY, RESOURCE_ASSIGNMENT's JSON) and the SDK send dueDateTime as a
    dateTimeTimeZone object and notes as an itemBody object; some property tables say DateTimeOffset and
    String (contradictory: the objects are what the sandbox takes, a string is refused)."""
    due = body.get("dueDateTime")
    if due is not None:
        # RESOURCE_DATE_TIME_TIME_ZONE: dateTime "{date}T{time}", timeZone a zone name.
        if not isinstance(due, dict) or not isinstance(due.get("dateTime"), str):
            raise GraphHttpError(400, "badRequest", "Input field dueDateTime is invalid")
        if not _wall_time(due["dateTime"]) or not isinstance(due.get("timeZone"), str) or not due["timeZone"]:
            raise GraphHttpError(400, "badRequest", "Input field dueDateTime is invalid")
    notes = body.get("notes")
    if notes is not None:
        # RESOURCE_ITEM_BODY: content, and contentType text or html.
        if not isinstance(notes, dict) or notes.get("contentType") not in ("text", "html"):
            raise GraphHttpError(400, "badRequest", "Input field notes is invalid")
        if not isinstance(notes.get("content"), str):
            raise GraphHttpError(400, "badRequest", "Input field notes is invalid")


#: RESOURCE_DATE_TIME_TIME_ZONE: dateTime is "A single point of time in a combined date and time
#: representation ({date}T{time}; for example, 2017-08-29T04:00:00.0000000)": the extended calendar date,
#: a T, the time with seconds and an optional fraction; no offset (the zone is timeZone's). Digits 0-9
#: only (re.ASCII: `\d` would take any Unicode digit), and nothing after (\Z, not $, which also
#: matches before a final newline).
_DATE_T_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?\Z", re.ASCII)


def _wall_time(text: str) -> bool:
    from datetime import datetime

    if not _DATE_T_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text.partition(".")[0])
    except ValueError:  # a day or an hour that does not exist (2026-02-30, 25:00)
        return False
    return True


def check_update_activity(record: Doc, body: Doc) -> None:
    """PATCH .../learningCourseActivities/{id} (UPDATE_ACTIVITY)."""
    # UPDATE_ACTIVITY: "@odata.type ... required": it picks the type, and cannot change it.
    if body.get("@odata.type") != record["@odata.type"]:
        raise bad_request("@odata.type must be given and equal the record's type.")
    if record["@odata.type"] == ASSIGNMENT:
        check_assignment_update(record, body)
        return
    # UPDATE_ACTIVITY, the table for learningSelfInitiatedCourse: completedDateTime,
    # completionPercentage, startedDateTime and status can be updated; status is marked Required.
    changeable = {"completedDateTime", "completionPercentage", "startedDateTime", "status"}
    fixed = sorted(k for k in body if k not in changeable and not k.startswith("@odata."))
    if fixed:
        raise bad_request(f"Property {fixed[0]!r} cannot be updated on a learningSelfInitiatedCourse.")
    if body.get("status") is None:
        raise bad_request("Required property 'status' is missing.")
    check_self_initiated_status(body)
    # UPDATE_ACTIVITY's example clears a field with "completedDateTime": null; any of the changeable
    # date and percentage fields may be null. Moving a record backwards (completed -> inProgress) is
    # not documented either way: allowed (unconfirmed).


#: UPDATE_ACTIVITY, the table for learningAssignment: what a PATCH may change.
ASSIGNMENT_CHANGEABLE = frozenset(
    {"assignedDateTime", "completedDateTime", "completionPercentage", "dueDateTime", "notes", "status"}
)


def check_assignment_update(record: Doc, body: Doc) -> None:
    """PATCH of a learningAssignment (UPDATE_ACTIVITY). Its table lists assignedDateTime,
    completedDateTime, completionPercentage, dueDateTime, notes and status (Required); assignmentType is
    not in it (an older version of the page listed it). The page's own example PATCH sends fields that
    cannot change too (learnerUserId, ...): tolerated with the record's values (unconfirmed), refused
    with others, so a PATCH never changes assignmentType."""
    for name in sorted(body):
        if name in ASSIGNMENT_CHANGEABLE or name.startswith("@odata."):
            continue
        if body[name] != record.get(name):
            raise bad_request(f"Property {name!r} cannot be updated on a learningAssignment.")
    if body.get("status") is None:
        raise bad_request("Required property 'status' is missing.")
    # RESOURCE_ACTIVITY: notStarted, inProgress and completed are all valid on an assignment.
    if body["status"] not in ("notStarted", "inProgress", "completed"):
        raise bad_request(f"status {body['status']!r} is not valid for a learningAssignment.")
    check_assignment_fields(body)


def check_self_initiated_status(body: Doc) -> None:
    """RESOURCE_SELF_INITIATED and UPDATE_ACTIVITY: a self-initiated course's status is inProgress or
    completed. CREATE_ACTIVITY's shared table also lists notStarted (contradictory): refused, since
    the resource page is the type's own definition."""
    if body.get("@odata.type") == SELF_INITIATED and body.get("status") not in ("inProgress", "completed"):
        raise bad_request(
            f"status {body.get('status')!r} is not valid for a learningSelfInitiatedCourse "
            "(inProgress or completed)."
        )


def check_percentage(body: Doc) -> None:
    """RESOURCE_ACTIVITY: completionPercentage is 0 to 100 (null clears it)."""
    percentage = body.get("completionPercentage")
    if percentage is not None and not (
        isinstance(percentage, int) and not isinstance(percentage, bool) and 0 <= percentage <= 100
    ):
        raise bad_request("completionPercentage must be a whole number between 0 and 100.")


def check_new_content(body: Doc) -> None:
    """UPDATE_CONTENT: PATCH learningContents(externalId='...') creates or updates; the resource table
    marks externalId (the key), title, contentWebUrl and languageTag Required on create. The examples
    carry no @odata.type, so none is required (a given one must be learningContent)."""
    missing = [k for k in ("title", "contentWebUrl", "languageTag") if not body.get(k)]
    if missing:
        raise bad_request(f"Required property {missing[0]!r} is missing.")


#: CREATE_USER: "the following properties are required": accountEnabled, displayName, mailNickname,
#: userPrincipalName, passwordProfile.
USER_REQUIRED = ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile")

#: ADVANCED_QUERIES: filters on these need ConsistencyLevel: eventual and $count=true; mail,
#: userPrincipalName, otherMails/any and employeeId eq work without (the $filter support tables).
_ADVANCED_PREFIXES = ("onPremisesSamAccountName", "extension_")


def check_user_query(field: str, consistency_level: str | None, count: str | None) -> None:
    advanced = consistency_level is not None and consistency_level.lower() == "eventual"
    # ADVANCED_QUERIES: "$count ... requires the ConsistencyLevel header set to eventual" on
    # directory objects.
    if count is not None and not advanced:
        raise GraphHttpError(
            400,
            "Request_BadRequest",
            "$count is not currently supported without the ConsistencyLevel header set to eventual.",
        )
    if field.startswith(_ADVANCED_PREFIXES) and not (advanced and count == "true"):
        raise GraphHttpError(
            400,
            "Request_UnsupportedQuery",
            f"Filtering on {field} is an advanced query: it needs ConsistencyLevel: eventual and "
            "$count=true.",
        )


#: JSON_BATCHING, "Batch size limitations": "JSON batch requests are currently limited to 20 individual
#: requests."
MAX_BATCH = 20


def check_batch(doc: Any) -> list[Doc]:
    """POST /$batch (JSON_BATCHING, "Creating a batch request"): the body is an object whose required
    `requests` holds at most MAX_BATCH requests, each with a string `id` (required, not case-sensitive,
    unique in the batch, "otherwise, the batch request fails with a 400"), `method` and `url` (required;
    the url relative to the version root), `headers` (an object, required with a body: "When a body is
    included with the request, the headers object must contain a value for Content-Type") and
    `dependsOn` (ids of other requests in the batch). A malformed batch is a 400 as a whole ("If the
    batch request itself is malformed, the status code is 400"). Which of these the service checks
    before running anything, rather than failing the one request, is unconfirmed: the sandbox refuses
    the batch for each of them."""
    requests = doc.get("requests") if isinstance(doc, dict) else None
    if not isinstance(requests, list) or not requests:
        raise bad_request("A batch request body is an object with a non-empty 'requests' array.")
    if len(requests) > MAX_BATCH:
        raise bad_request(f"A batch holds at most {MAX_BATCH} requests, not {len(requests)}.")
    seen: set[str] = set()
    for index, item in enumerate(requests):
        _check_batch_item(index, item)
        key = item["id"].casefold()
        if key in seen:
            raise bad_request(f"Batch request id {item['id']!r} is not unique in the batch.")
        seen.add(key)
    for item in requests:
        for dependency in item.get("dependsOn") or []:
            if not isinstance(dependency, str) or dependency.casefold() not in seen:
                raise bad_request(f"Request {item['id']!r} depends on {dependency!r}, not in the batch.")
            if dependency.casefold() == item["id"].casefold():
                raise bad_request(f"Request {item['id']!r} depends on itself.")
    return requests


def _check_batch_item(index: int, item: Any) -> None:
    if not isinstance(item, dict):
        raise bad_request(f"Batch request {index} is not a JSON object.")
    for name in ("id", "method", "url"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise bad_request(f"Batch request {index}: required property {name!r} is missing.")
    headers = item.get("headers")
    if headers is not None and (
        not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values())
    ):
        raise bad_request(f"Batch request {item['id']!r}: headers is an object of strings.")
    if "body" in item and not any(k.lower() == "content-type" for k in headers or {}):
        raise bad_request(f"Batch request {item['id']!r} has a body and no Content-Type header.")
    depends_on = item.get("dependsOn")
    if depends_on is not None and not isinstance(depends_on, list):
        raise bad_request(f"Batch request {item['id']!r}: dependsOn is an array of request ids.")


def check_batch_url(url: str) -> None:
    """JSON_BATCHING: url is "the relative resource URL for the individual request": `/users` for
    `https://graph.microsoft.com/v1.0/users` (the page's own example also writes `users?...` without
    the slash: both accepted). An absolute URL fails that request with 400 (the status is unconfirmed;
    msgraph-sdk-python issue 1015 reports Graph's "Resource not found for the segment" for one), and
    so does a batch nested in a batch (the page is silent)."""
    if "://" in url.split("?", 1)[0]:
        raise bad_request("A batch request's url is relative to the version root (/users, not https://...).")
    if url.lstrip("/").split("?", 1)[0].lower() in ("$batch", "%24batch"):
        raise bad_request("A batch cannot hold another batch.")


# ---- learning providers: delegated only ---------------------------------------------------------

CREATE_PROVIDER = "api/employeeexperience-post-learningproviders"
GET_PROVIDER = "api/learningprovider-get"
UPDATE_PROVIDER = "api/learningprovider-update"
LIST_CONTENTS = "api/learningprovider-list-learningcontents"
#: The access token's claims ("Microsoft identity platform access tokens", learn.microsoft.com
#: entra/identity-platform/access-token-claims-reference): a delegated token carries the user's
#: granted scopes in `scp` (space-separated), an application token its app roles in `roles` (and no
#: `scp`).
CLAIMS_REFERENCE = "entra/identity-platform/access-token-claims-reference"
#: CREATE_PROVIDER: the four logo URLs Graph requires besides displayName.
PROVIDER_LOGOS = (
    "squareLogoWebUrlForDarkTheme",
    "longLogoWebUrlForDarkTheme",
    "squareLogoWebUrlForLightTheme",
    "longLogoWebUrlForLightTheme",
)


def token_claims(authorization: str | None) -> Doc | None:
    """The claims of a bearer token (its signature is not checked: the sandbox trusts its loopback
    callers), or None when the request has no Authorization header (the bridge's local
    `BRIDGE_GRAPH_AUTH=anonymous`). A header that is no JWT is refused as Graph refuses one: 401
    InvalidAuthenticationToken."""
    import base64
    import json

    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    parts = token.strip().split(".")
    try:
        if scheme.lower() != "bearer" or len(parts) != 3:
            raise ValueError
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        if not isinstance(claims, dict):
            raise ValueError
        return claims
    except (ValueError, UnicodeDecodeError):
        raise GraphHttpError(401, "InvalidAuthenticationToken", "Access token validation failure.") from None


def require_delegated(claims: Doc | None, method: str) -> None:
    """CREATE_PROVIDER, GET_PROVIDER, UPDATE_PROVIDER (and list, delete): delegated permissions only
    (`LearningProvider.Read` for reads, `LearningProvider.ReadWrite` for writes); "Application: Not
    supported". An application token (CLAIMS_REFERENCE: `roles`, no `scp`) is refused with 403;
    a delegated one without the scope too. The answer's exact code and message are unconfirmed (the
    pages list none): 403 Forbidden, naming what is missing. A request with no token at all (the
    local anonymous mode) is let through: lenient, as the sandbox is on loopback."""
    if claims is None:
        return
    scopes = str(claims.get("scp") or "").split()
    if not scopes:
        raise GraphHttpError(
            403,
            "Forbidden",
            "Application permissions are not supported for learning providers: sign in as a user "
            "(delegated LearningProvider.ReadWrite).",
        )
    needed = (
        {"LearningProvider.ReadWrite"}
        if method != "GET"
        else {
            "LearningProvider.Read",
            "LearningProvider.ReadWrite",
        }
    )
    if not needed & set(scopes):
        raise GraphHttpError(
            403,
            "Forbidden",
            f"Missing scope permissions on the request. API requires one of '{', '.join(sorted(needed))}'.",
        )


#: The application permissions of course activity writes (CREATE_ACTIVITY, UPDATE_ACTIVITY,
#: DELETE_ACTIVITY: "Application: LearningAssignedCourse.ReadWrite.All, LearningSelfInitiatedCourse.
#: ReadWrite.All", by the record's type; "Delegated: Not supported"): a self-initiated course needs
#: LearningSelfInitiatedCourse.ReadWrite.All, an assignment either (the higher one covers it).
SELF_INITIATED_ROLE = "LearningSelfInitiatedCourse.ReadWrite.All"
ASSIGNMENT_ROLE = "LearningAssignedCourse.ReadWrite.All"


def require_write_role(claims: Doc | None, type_name: str | None) -> None:
    """A course activity write with a token whose `roles` (CLAIMS_REFERENCE: an application token's
    app roles) hold no permission for the record's type (`type_name`, the @odata.type) is refused as
    ERROR_CODES' delete and update tables answer "User doesn't have the appropriate permissions scope":
    403 Forbidden "Your account doesn't have access to this report or data. Please contact your global
    administrator to request access." The create table lists no such row: the same answer there
    (unconfirmed). A delegated token has no `roles` and is refused the same way (delegated: not
    supported). A request with no token at all (the local anonymous mode, a batch item, which carries
    no Authorization of its own) is let through: lenient, as the sandbox is on loopback."""
    if claims is None:
        return
    roles = claims.get("roles")
    held = {str(r) for r in roles} if isinstance(roles, list) else set()
    needed = {SELF_INITIATED_ROLE, ASSIGNMENT_ROLE} if type_name == ASSIGNMENT else {SELF_INITIATED_ROLE}
    if not needed & held:
        raise GraphHttpError(
            403,
            "Forbidden",
            "Your account doesn't have access to this report or data. Please contact your global "
            "administrator to request access.",
        )


def check_new_provider(body: Any) -> None:
    """CREATE_PROVIDER: `displayName` and the four logo URLs are required (the page names no error
    text for a missing one: the learning API's usual "Input field {fieldName} is required" here,
    unconfirmed)."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    for name in ("displayName", *PROVIDER_LOGOS):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise bad_request(f"Input field {name} is required")


#: UPDATE_PROVIDER: the properties resources/learningprovider declares, and their types (`id` is
#: read-only). A property of another type, or one the resource does not declare, is refused with 400,
#: in the words the sandbox's schema validation uses for other resources (schema.validate_write).
PROVIDER_PROPERTIES: dict[str, type] = {
    "displayName": str,
    "isCourseActivitySyncEnabled": bool,
    "loginWebUrl": str,
    **dict.fromkeys(PROVIDER_LOGOS, str),
}


def check_provider_update(body: Any) -> None:
    """UPDATE_PROVIDER: only declared properties, each of its declared type (a Boolean sync flag: the
    string "false" is no Boolean); `loginWebUrl` may be null."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    for name, value in body.items():
        if name.startswith("@odata."):
            continue
        if name == "id":
            raise bad_request("Property 'id' is read-only and cannot be written.")
        expected = PROVIDER_PROPERTIES.get(name)
        if expected is None:
            raise bad_request(
                f"Invalid property {name!r}: it does not exist on type microsoft.graph.learningProvider."
            )
        if value is None and name == "loginWebUrl":
            continue
        if not isinstance(value, expected) or (isinstance(value, str) and not value.strip()):
            kind = "boolean" if expected is bool else "a non-empty string"
            raise bad_request(f"Invalid value at {name}: {value!r} is not {kind}.")
