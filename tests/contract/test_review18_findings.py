"""Review of issue 18 (assigned learning), through the real pieces: the upserter writing to the Graph
sandbox through msgraph-sdk. Each test fails on the code as reviewed."""

from __future__ import annotations

import uuid

import pytest

from shared.delivery import CourseActivityUpserter, PermanentFailure
from shared.events.identity import activity_id_for
from shared.events.model import CourseStatus
from tests.builders import canonical
from tests.contract.conftest import ENABLED_PROVIDER
from tests.contract.test_graph_contract import ADA, gateway
from tests.fakes import MemoryStateStore


async def test_a_type_switch_graph_refuses_does_not_delete_the_learners_completed_record(
    sandbox_url: str,
) -> None:
    """README "Assigned courses": self-initiated then assigned, "the bridge deletes the record and
    creates it again as the events call for, with the progress and the completion (a completion stays
    a completion)". `_recreate` DELETEs first and only then POSTs; when Graph refuses the POST for good
    the learner's record is simply gone from Viva Learning. Here the refusal comes from the assignment
    itself: a dueAt of 0999-06-01 is accepted at ingest and written as "999-06-01T00:00:00.0000000"
    (gateway.due_to_json), which the sandbox refuses (400 "Input field dueDateTime is invalid",
    resources/datetimetimezone). Ada's completion, delivered to Graph earlier, is deleted, and since the
    statement stays in the fold every later event of the course fails the same POST: the completion
    never comes back. A type switch must not lose what Graph already showed."""
    graph = gateway(sandbox_url, ENABLED_PROVIDER)
    upserter = CourseActivityUpserter(graph, MemoryStateStore())
    activity = f"review18-{uuid.uuid4()}"
    # the record's external id in Graph: the sender's id namespaced by source
    external_id = activity_id_for(canonical(externalCourseActivityId=activity), ADA, False)
    await upserter.apply(
        canonical(
            eventId=f"{activity}-done",
            status="completed",
            completionPercentage=None,
            externalCourseActivityId=activity,
        )
    )
    before = await graph.get_activity(external_id)
    assert before is not None
    assert before.status is CourseStatus.COMPLETED
    with pytest.raises(PermanentFailure) as refused:
        await upserter.apply(
            canonical(
                eventId=f"{activity}-assigned",
                occurredAt="2026-11-21T09:00:00Z",
                status="notStarted",
                completionPercentage=None,
                externalCourseActivityId=activity,
                assignment={"type": "required", "dueAt": "0999-06-01T00:00:00Z"},
            )
        )
    assert "dueDateTime" in refused.value.detail
    record = await graph.get_activity(external_id)
    assert record is not None, "the learner's completed course activity was deleted from Graph"
    assert record.status is CourseStatus.COMPLETED


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
