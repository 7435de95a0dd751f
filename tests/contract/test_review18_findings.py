"""Review of issue 18 (assigned learning), through the real pieces: the upserter writing to the Graph
sandbox through msgraph-sdk. Each test fails on the code as reviewed."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("missing", ["learnerUserId", "learningContentId", "status"])
def test_the_sandbox_answers_a_missing_assignment_field_as_the_error_page_documents(
    sandbox_url: str, missing: str
) -> None:
    """RULES-assignments-providers.md and README's sandbox table (line "assignment create: ...
    required (400 "Input field {fieldName} is required")"), from resources/learningcourseactivity-
    error-codes: a create missing a required field is 400 `badRequest` "Input field {fieldName} is
    required". The sandbox says so only for assignmentType and learningProviderId: for learnerUserId,
    learningContentId and status, rules.check_create_activity answers first with its own "Required
    property 'status' is missing." (code BadRequest), so the sandbox does not speak for the page there."""
    import httpx

    from tests.contract.test_sandbox_rules import assignment, provider_path

    with httpx.Client(base_url=f"{sandbox_url}/v1.0", timeout=10) as api:
        body = assignment(api, **{missing: None})
        response = api.post(provider_path("learningCourseActivities"), json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"Input field {missing} is required"
