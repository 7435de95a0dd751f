"""The sandbox's documented rules that the bridge's gateway never gets near (it always sends what they
require), checked over plain HTTP: each case names the Graph page the rule comes from."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.contract.conftest import ENABLED_PROVIDER

ADA = "4a1f3c2e-8b7d-4e6a-9f05-1c2d3e4f5a6b"
SELF = "#microsoft.graph.learningSelfInitiatedCourse"


@pytest.fixture
def api(sandbox_url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{sandbox_url}/v1.0", timeout=10)


def provider_path(*parts: str) -> str:
    return "/".join([f"/employeeExperience/learningProviders/{ENABLED_PROVIDER}", *parts])


def content_id(api: httpx.Client) -> str:
    found: str = api.get(provider_path("learningContents(externalId='course-101')")).json()["id"]
    return found


def activity(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    body = {
        "@odata.type": SELF,
        "externalcourseActivityId": f"rules-{uuid.uuid4()}",
        "learnerUserId": ADA,
        "learningContentId": content_id(api),
        "status": "inProgress",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_create_needs_odata_type(api: httpx.Client) -> None:
    # api/employeeexperienceuser-post-learningcourseactivities: @odata.type is required.
    response = api.post(
        provider_path("learningCourseActivities"), json=activity(api, **{"@odata.type": None})
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_create_accepts_the_providers_own_id_and_refuses_another(api: httpx.Client) -> None:
    # resources/learningcourseactivity lists learningProviderId as Required (the example omits it).
    mine = api.post(
        provider_path("learningCourseActivities"), json=activity(api, learningProviderId=ENABLED_PROVIDER)
    )
    assert mine.status_code == 201
    other = api.post(
        provider_path("learningCourseActivities"), json=activity(api, learningProviderId="another")
    )
    assert other.status_code == 400


def test_an_update_changes_only_the_documented_fields_and_names_its_type(api: httpx.Client) -> None:
    # api/learningcourseactivity-update: completedDateTime, completionPercentage, startedDateTime, status.
    created = api.post(provider_path("learningCourseActivities"), json=activity(api)).json()
    path = provider_path("learningCourseActivities", created["id"])
    moved = api.patch(path, json={"@odata.type": SELF, "status": "inProgress", "learnerUserId": ADA})
    assert moved.status_code == 400
    untyped = api.patch(path, json={"status": "completed"})
    assert untyped.status_code == 400
    assert api.patch(path, json={"@odata.type": SELF, "status": "completed"}).status_code == 204


def test_creating_a_user_needs_what_create_user_requires(api: httpx.Client) -> None:
    # api/user-post-users: accountEnabled, displayName, mailNickname, userPrincipalName, passwordProfile.
    upn = f"rules-{uuid.uuid4().hex[:8]}@contoso.example"
    partial = {"displayName": "New Hire", "userPrincipalName": upn}
    assert api.post("/users", json=partial).status_code == 400
    full = {
        **partial,
        "accountEnabled": True,
        "mailNickname": upn.split("@")[0],
        "passwordProfile": {"password": f"Pw-{uuid.uuid4()}"},
    }
    created = api.post("/users", json=full)
    assert created.status_code == 201
    assert "passwordProfile" not in created.json()


def test_a_deleted_user_is_no_longer_found_and_deleting_it_again_is_404(api: httpx.Client) -> None:
    # api/user-delete: DELETE /users/{id | userPrincipalName} answers 204 No Content; the user goes to
    # deleted items (not listed by /users). The 404 for an unknown user is Graph's usual answer for a
    # missing directory object (the page lists no errors).
    upn = f"leaver-{uuid.uuid4().hex[:8]}@contoso.example"
    user = {
        "accountEnabled": True,
        "displayName": "Leaver",
        "mailNickname": upn.split("@")[0],
        "userPrincipalName": upn,
        "passwordProfile": {"password": f"Pw-{uuid.uuid4()}"},
        "mail": upn,
    }
    user_id = api.post("/users", json=user).json()["id"]
    assert api.delete(f"/users/{user_id}").status_code == 204
    assert api.get(f"/users/{user_id}").status_code == 404
    assert api.get("/users", params={"$filter": f"mail eq '{upn}'"}).json()["value"] == []
    gone = api.delete(f"/users/{user_id}")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "Request_ResourceNotFound")


def test_content_is_created_without_odata_type(api: httpx.Client) -> None:
    # api/learningprovider-update-learningcontents: the examples carry no @odata.type.
    external_id = f"rules-course-{uuid.uuid4()}"
    body = {"title": "Rules", "contentWebUrl": "https://lms.contoso.example/rules", "languageTag": "en-us"}
    assert (
        api.patch(provider_path(f"learningContents(externalId='{external_id}')"), json=body).status_code
        == 200
    )
    missing = api.patch(provider_path(f"learningContents(externalId='{external_id}-2')"), json={"title": "x"})
    assert missing.status_code == 400


def test_advanced_user_filters_need_the_advanced_query_headers(api: httpx.Client) -> None:
    # graph/aad-advanced-queries: onPremisesSamAccountName and extension attributes need
    # ConsistencyLevel: eventual and $count=true; $count needs the header too.
    query = {"$filter": "onPremisesSamAccountName eq 'alovelace'"}
    assert api.get("/users", params=query).status_code == 400
    advanced = api.get("/users", params={**query, "$count": "true"}, headers={"ConsistencyLevel": "eventual"})
    assert advanced.status_code == 200
    assert [u["id"] for u in advanced.json()["value"]] == [ADA]
    plain = {"$filter": "mail eq 'ada.lovelace@contoso.example'"}
    assert api.get("/users", params=plain).status_code == 200
    assert api.get("/users", params={**plain, "$count": "true"}).status_code == 400


# ---- graph/json-batching ("Combine multiple HTTP requests using JSON batching") -----------------


def get(request_id: str, url: str, **more: Any) -> dict[str, Any]:
    return {"id": request_id, "method": "GET", "url": url, **more}


def batch(api: httpx.Client, *requests: dict[str, Any]) -> httpx.Response:
    return api.post("/$batch", json={"requests": list(requests)})


def test_a_batch_holds_at_most_20_requests_with_ids_unique_in_any_case(api: httpx.Client) -> None:
    # "JSON batch requests are currently limited to 20 individual requests"; id is "Not case-sensitive.
    # Must be unique in the batch, otherwise, the batch request fails with a 400 error code."
    user = f"/users/{ADA}"
    assert batch(api, *(get(str(n), user) for n in range(20))).status_code == 200
    too_many = batch(api, *(get(str(n), user) for n in range(21)))
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (400, "BadRequest")
    assert batch(api, get("a", user), get("A", user)).status_code == 400
    assert api.post("/$batch", json={"value": []}).status_code == 400
    assert batch(api, {"id": "1", "url": user}).status_code == 400  # method is required


def test_a_batch_request_with_a_body_names_its_content_type(api: httpx.Client) -> None:
    # "When a body is included with the request, the headers object must contain a value for Content-Type."
    path = provider_path(f"learningContents(externalId='rules-{uuid.uuid4()}')")
    write = {"id": "1", "method": "PATCH", "url": path, "body": {"title": "T"}}
    assert batch(api, write).status_code == 400
    typed = batch(api, {**write, "headers": {"Content-Type": "application/json"}})
    assert typed.status_code == 200


def test_each_request_is_answered_by_id_with_its_status_headers_and_body(api: httpx.Client) -> None:
    # "Individual responses might appear in a different order than the requests"; each has id, status,
    # headers and body; the url is relative to the version root, with or without its leading slash.
    answered = batch(
        api,
        get("user", f"/users/{ADA}?$select=id"),
        get("missing", "users/nobody@contoso.example"),
        get("content", provider_path("learningContents(externalId='course-101')")),
    )
    assert answered.status_code == 200
    by_id = {r["id"]: r for r in answered.json()["responses"]}
    assert list(by_id) != ["user", "missing", "content"]  # the sandbox answers out of order on purpose
    assert (by_id["user"]["status"], by_id["user"]["body"]) == (200, {"id": ADA})
    assert by_id["user"]["headers"]["Content-Type"].startswith("application/json")
    assert (by_id["missing"]["status"], by_id["missing"]["body"]["error"]["code"]) == (
        404,
        "Request_ResourceNotFound",
    )
    assert by_id["content"]["body"]["externalId"] == "course-101"
    absolute = batch(api, get("1", f"https://graph.microsoft.com/v1.0/users/{ADA}"))
    assert absolute.json()["responses"][0]["status"] == 400


def test_a_request_runs_after_those_it_depends_on_and_fails_424_when_they_fail(api: httpx.Client) -> None:
    # "Sequencing requests with the dependsOn property": "If an individual request fails, any request
    # that depends on that request fails with status code 424 (Failed Dependency)."
    external_id = f"rules-{uuid.uuid4()}"
    created = activity(api, externalcourseActivityId=external_id)
    by_key = provider_path(f"learningCourseActivities(externalcourseActivityId='{external_id}')")
    answered = batch(
        api,
        get("read", by_key, dependsOn=["create"]),
        {
            "id": "create",
            "method": "POST",
            "url": provider_path("learningCourseActivities"),
            "body": created,
            "headers": {"Content-Type": "application/json"},
        },
        get("after-missing", by_key, dependsOn=["missing"]),
        get("missing", "/users/nobody@contoso.example"),
    )
    statuses = {r["id"]: r["status"] for r in answered.json()["responses"]}
    assert statuses == {"create": 201, "read": 200, "missing": 404, "after-missing": 424}
    unknown = batch(api, get("1", by_key, dependsOn=["2"]))
    assert unknown.status_code == 400


def test_a_throttled_request_inside_a_batch_fails_alone_with_its_retry_after(
    api: httpx.Client, sandbox_url: str
) -> None:
    # "Requests in a batch are evaluated individually against the applicable throttling limits and if
    # any request exceeds the limits, it fails with a status of 429"; the batch itself, parseable,
    # is answered 200 (graph/throttling says 424: contradictory, see devtools/graph_sandbox/batch.py).
    fault = {"status": 429, "retryAfterSeconds": 3, "method": "GET", "pathContains": "course-202"}
    httpx.post(f"{sandbox_url}/_sandbox/faults", json={"failNext": [fault]}, timeout=10).raise_for_status()
    try:
        answered = batch(
            api,
            get("a", provider_path("learningContents(externalId='course-101')")),
            get("b", provider_path("learningContents(externalId='course-202')")),
        )
    finally:
        httpx.post(f"{sandbox_url}/_sandbox/faults", json={}, timeout=10)
    assert answered.status_code == 200
    by_id = {r["id"]: r for r in answered.json()["responses"]}
    assert by_id["a"]["status"] == 200
    assert (by_id["b"]["status"], by_id["b"]["headers"]["Retry-After"]) == (429, "3")
    assert by_id["b"]["body"]["error"]["code"] == "TooManyRequests"


ASSIGNMENT = "#microsoft.graph.learningAssignment"


def assignment(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    """The Create example of a learningAssignment (its fields, for this tenant's ids)."""
    body = activity(
        api,
        **{
            "@odata.type": ASSIGNMENT,
            "assignedDateTime": "2021-05-11T22:57:17+00:00",
            "assignmentType": "required",
            "completionPercentage": 20,
            "dueDateTime": {"dateTime": "2022-09-22T16:05:00.0000000", "timeZone": "UTC"},
            "learningProviderId": ENABLED_PROVIDER,
            "notes": {"contentType": "text", "content": "required assignment added for user"},
            "status": "notStarted",
        },
    )
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_an_assignment_as_the_create_example_is_created_not_started(api: httpx.Client) -> None:
    # api/employeeexperienceuser-post-learningcourseactivities, Example 1; resources/learningcourseactivity:
    # notStarted is valid on an assignment.
    created = api.post(provider_path("learningCourseActivities"), json=assignment(api))
    assert created.status_code == 201
    body = created.json()
    assert (body["@odata.type"], body["status"], body["assignmentType"]) == (
        ASSIGNMENT,
        "notStarted",
        "required",
    )
    assert body["dueDateTime"] == {"dateTime": "2022-09-22T16:05:00.0000000", "timeZone": "UTC"}


@pytest.mark.parametrize("missing", ["assignmentType", "learningProviderId", "status"])
def test_an_assignment_create_needs_each_required_field(api: httpx.Client, missing: str) -> None:
    # api/employeeexperienceuser-post-learningcourseactivities: assignmentType, learnerUserId,
    # learningContentId, learningProviderId and status Required; resources/learningcourseactivity-error-codes:
    # 400 "Input field {fieldName} is required".
    response = api.post(provider_path("learningCourseActivities"), json=assignment(api, **{missing: None}))
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dueDateTime", "2022-09-22T16:05:00Z"),  # the tables' DateTimeOffset: every example is an object
        ("dueDateTime", {"dateTime": "2022-09-22T16:05:00Z", "timeZone": "UTC"}),  # an offset in dateTime
        ("notes", "required assignment added for user"),  # the tables' String: every example is an itemBody
        ("notes", {"contentType": "markdown", "content": "x"}),
        ("assignmentType", "unknownFutureValue"),
    ],
)
def test_an_assignment_field_in_another_shape_is_refused(api: httpx.Client, field: str, value: Any) -> None:
    # resources/learningassignment, resources/datetimetimezone, resources/itembody
    response = api.post(provider_path("learningCourseActivities"), json=assignment(api, **{field: value}))
    assert response.status_code == 400


def test_an_assignment_patch_may_not_change_its_type_but_may_move_its_due_date(api: httpx.Client) -> None:
    # api/learningcourseactivity-update: the learningAssignment table has no assignmentType.
    created = api.post(provider_path("learningCourseActivities"), json=assignment(api)).json()
    path = provider_path("learningCourseActivities", created["id"])
    retyped = api.patch(
        path, json={"@odata.type": ASSIGNMENT, "status": "notStarted", "assignmentType": "recommended"}
    )
    assert retyped.status_code == 400
    unchanged = api.patch(
        path, json={"@odata.type": ASSIGNMENT, "status": "notStarted", "assignmentType": "required"}
    )
    assert unchanged.status_code == 204  # the page's example PATCH repeats fixed fields (tolerated)
    as_self = api.patch(path, json={"@odata.type": SELF, "status": "inProgress"})
    assert as_self.status_code == 400  # @odata.type cannot change
    moved = {"dateTime": "2023-01-15T17:00:00.0000000", "timeZone": "UTC"}
    assert (
        api.patch(
            path, json={"@odata.type": ASSIGNMENT, "status": "inProgress", "dueDateTime": moved}
        ).status_code
        == 204
    )
    assert api.get(path).json()["dueDateTime"] == moved
    bad = api.patch(
        path, json={"@odata.type": ASSIGNMENT, "status": "inProgress", "dueDateTime": "2023-01-15"}
    )
    assert bad.status_code == 400


# ---- learning providers: delegated only (api/employeeexperience-post-learningproviders,
# api/learningprovider-get, api/learningprovider-update: "Application: Not supported") ------------

LOGOS = {
    "squareLogoWebUrlForDarkTheme": "https://cdn.contoso.example/sd.png",
    "squareLogoWebUrlForLightTheme": "https://cdn.contoso.example/sl.png",
    "longLogoWebUrlForDarkTheme": "https://cdn.contoso.example/ld.png",
    "longLogoWebUrlForLightTheme": "https://cdn.contoso.example/ll.png",
}


def bearer(claims: dict[str, Any]) -> dict[str, str]:
    from tests.cli_harness import unsigned_token

    return {"Authorization": f"Bearer {unsigned_token(claims)}"}


def test_provider_calls_refuse_an_application_token(api: httpx.Client) -> None:
    application = bearer({"roles": ["LearningSelfInitiatedCourse.ReadWrite.All"]})
    for method, path, body in [
        ("POST", "/employeeExperience/learningProviders", {"displayName": "C", **LOGOS}),
        ("GET", provider_path(), None),
        ("PATCH", provider_path(), {"isCourseActivitySyncEnabled": True}),
    ]:
        answer = api.request(method, path, json=body, headers=application)
        assert answer.status_code == 403, (method, answer.text)
        assert "Application permissions are not supported" in answer.json()["error"]["message"]


def test_provider_calls_need_the_delegated_scope(api: httpx.Client) -> None:
    reader = bearer({"scp": "LearningProvider.Read User.Read"})
    assert api.get(provider_path(), headers=reader).status_code == 200
    refused = api.patch(provider_path(), json={"isCourseActivitySyncEnabled": True}, headers=reader)
    assert refused.status_code == 403
    assert "LearningProvider.ReadWrite" in refused.json()["error"]["message"]
    writer = bearer({"scp": "LearningProvider.ReadWrite"})
    assert (
        api.patch(provider_path(), json={"isCourseActivitySyncEnabled": True}, headers=writer).status_code
        == 204
    )


def test_a_bearer_that_is_no_token_is_refused_with_401(api: httpx.Client) -> None:
    answer = api.get(provider_path(), headers={"Authorization": "Bearer not-a-jwt"})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_provider_needs_its_name_and_four_logos_and_starts_with_sync_off(api: httpx.Client) -> None:
    writer = bearer({"scp": "LearningProvider.ReadWrite"})
    path = "/employeeExperience/learningProviders"
    for missing in ["displayName", *LOGOS]:
        body = {k: v for k, v in {"displayName": "C", **LOGOS}.items() if k != missing}
        answer = api.post(path, json=body, headers=writer)
        assert answer.status_code == 400
        assert answer.json()["error"]["message"] == f"Input field {missing} is required"
    created = api.post(path, json={"displayName": "C", **LOGOS, "id": "mine"}, headers=writer)
    assert created.status_code == 201
    assert created.json()["isCourseActivitySyncEnabled"] is False
    assert created.json()["id"] != "mine"  # the id is Graph's


def test_a_providers_contents_are_listed_with_top(api: httpx.Client) -> None:
    # api/learningprovider-list-learningcontents
    listed = api.get(provider_path("learningContents"), params={"$top": "1"})
    assert listed.status_code == 200
    assert len(listed.json()["value"]) == 1


def test_course_activity_calls_under_an_unknown_registration_id_are_refused_as_the_error_page_says(
    api: httpx.Client,
) -> None:
    # resources/learningcourseactivity-error-codes (create, delete, get and update tables): 400 "There was
    # an issue with your request. Make sure the registrationId you entered is valid or registered for
    # your tenant."
    unknown = "/employeeExperience/learningProviders/not-registered/learningCourseActivities"
    for method, path, body in [
        ("POST", unknown, activity(api)),
        ("GET", f"{unknown}(externalcourseActivityId='x')", None),
        ("PATCH", f"{unknown}/some-id", {"@odata.type": SELF, "status": "completed"}),
        ("DELETE", f"{unknown}/some-id", None),
    ]:
        answer = api.request(method, path, json=body)
        assert answer.status_code == 400, (method, answer.text)
        message = answer.json()["error"]["message"]
        assert "Make sure the registrationId you entered is valid or registered for your tenant" in message


def test_course_activity_writes_need_the_app_role_of_the_records_type_in_the_tokens_roles(
    api: httpx.Client,
) -> None:
    # api/employeeexperienceuser-post-learningcourseactivities, api/learningcourseactivity-update and
    # -delete: application LearningSelfInitiatedCourse.ReadWrite.All (or, for an assignment,
    # LearningAssignedCourse.ReadWrite.All); resources/learningcourseactivity-error-codes: 403 "Your
    # account doesn't have access to this report or data..." without it.
    path = provider_path("learningCourseActivities")
    without = bearer({"roles": ["User.Read.All", "LearningContent.Read.All"]})
    delegated = bearer({"scp": "LearningProvider.ReadWrite"})
    for headers in (without, delegated):
        refused = api.post(path, json=activity(api), headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["message"].startswith("Your account doesn't have access")
    writer = bearer({"roles": ["LearningSelfInitiatedCourse.ReadWrite.All"]})
    created = api.post(path, json=activity(api), headers=writer)
    assert created.status_code == 201, created.text
    record = provider_path("learningCourseActivities", created.json()["id"])
    patch = {"@odata.type": SELF, "status": "completed"}
    assert api.patch(record, json=patch, headers=without).status_code == 403
    assert api.delete(record, headers=without).status_code == 403
    assigned_only = bearer({"roles": ["LearningAssignedCourse.ReadWrite.All"]})
    assert api.patch(record, json=patch, headers=assigned_only).status_code == 403  # self-initiated
    assert api.patch(record, json=patch, headers=writer).status_code == 204
    assert api.delete(record, headers=writer).status_code == 204
