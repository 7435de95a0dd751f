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
