"""Review 8, end to end (dev host, Azurite, msgraph-sdk, the sandbox): what the bridge writes after a
crash that follows a landed POST, and what it costs on an activity without a percentage."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx

from shared.events.identity import ActivityOwner, derived_activity_id
from shared.state.store import TableStateStore
from tests.builders import USER_ID
from tests.e2e.stack import PROVIDER_ID, Stack, wait_for
from tests.e2e.test_graph_truth import (
    SELF_INITIATED,
    lrs_record,
    new_course,
    send_statements,
    statement,
    voiding,
    writes,
)

SANDBOX_CLIENT = {"x-sandbox-client": "review-8"}


def _provider_url(stack: Stack) -> str:
    return f"{stack.sandbox}/v1.0/employeeExperience/learningProviders/{PROVIDER_ID}"


def test_voiding_the_only_statement_deletes_a_record_whose_create_crashed_after_the_post(
    stack: Stack,
) -> None:
    """A worker claims the activity, POSTs the record (Graph writes it) and crashes before saving the
    Graph id. The redelivered statement takes over the stale claim, finds the record by external id
    and adopts it, folding Graph's copy in as a `graph` baseline that no voiding withdraws: voiding
    the only statement then leaves the record completed instead of deleting it."""
    course, done = new_course(stack), str(uuid.uuid4())
    activity_id = derived_activity_id("lrs", USER_ID, course)

    async def crashed_after_post(store: TableStateStore) -> None:
        claim = await store.claim_activity(activity_id, ActivityOwner("lrs", USER_ID, course))
        await store.save_activity(replace(claim, claimed_at=datetime.now(UTC) - timedelta(minutes=5)))

    stack.with_state(crashed_after_post)
    content = httpx.get(
        f"{_provider_url(stack)}/learningContents(externalId='{course}')", headers=SANDBOX_CLIENT
    ).json()
    landed = {  # what the crashed worker's POST wrote
        "@odata.type": SELF_INITIATED,
        "externalcourseActivityId": activity_id,
        "learnerUserId": USER_ID,
        "learningContentId": content["id"],
        "status": "completed",
        "completionPercentage": 100,
        "startedDateTime": "2026-11-21T09:00:00+00:00",
        "completedDateTime": "2026-11-21T09:00:00+00:00",
    }
    posted = httpx.post(
        f"{_provider_url(stack)}/learningCourseActivities", json=landed, headers=SANDBOX_CLIENT
    )
    assert posted.status_code == 201, posted.text
    send_statements(stack, [statement("completed", course, done, completion=True)])  # the redelivery
    wait_for(lambda: stack.activity_of("lrs", done), what="the statement applied (record adopted)")
    send_statements(stack, [voiding(done)])
    wait_for(lambda: stack.delivery("lrs", done) and stack.delivery("lrs", done).voided_by, what="the void")  # type: ignore[union-attr]
    time.sleep(3)
    assert lrs_record(stack, course) is None, "every statement behind the record was voided"


def test_a_statement_that_changes_nothing_costs_no_patch_on_an_activity_without_a_percentage(
    stack: Stack,
) -> None:
    """Two `attempted` statements (no percentage): the second changes nothing and should cost no Graph
    call. TableStateStore reads the missing percentage back as -1, so the bridge PATCHes
    `"completionPercentage": null` (and does so again on every later statement)."""
    course, first, second, third = new_course(stack), *(str(uuid.uuid4()) for _ in range(3))
    send_statements(stack, [statement("attempted", course, first)])
    record = wait_for(lambda: lrs_record(stack, course), what="the record")
    later = [statement("attempted", course, sid) for sid in (second, third)]
    for item in later:
        item["timestamp"] = "2026-11-22T09:00:00Z"
    send_statements(stack, later)
    wait_for(lambda: stack.activity_of("lrs", second) and stack.activity_of("lrs", third), what="applied")
    patches = [w for w in writes(stack) if w["path"].endswith(record["id"])]
    assert patches == [], f"needless PATCHes: {[p['body'] for p in patches]}"


def test_a_graph_outage_of_under_a_minute_does_not_dead_letter_an_event(stack: Stack) -> None:
    """Graph answers 503 without Retry-After (an outage, or a front end that names no delay) for the
    first five lookups of a new activity, i.e. for about 50 s. Each failure raises TransientFailure
    without retry_after, so the host retries it 10 s later (visibilityTimeout) and poisons it on the
    fifth: the event is dead-lettered (`poison`) and waits for an operator, although Graph recovered
    seconds later. Waiting out Graph should be the queue's job with a back-off, not a dead letter."""
    from tests.builders import event

    course, event_id = new_course(stack), f"outage-{uuid.uuid4()}"
    stack.faults(
        failNext=[
            {"status": 503, "method": "GET", "pathContains": "learningCourseActivities("} for _ in range(5)
        ]
    )
    stack.send(event(eventId=event_id, course={"externalId": course}))
    wait_for(
        lambda: stack.activity_of("generic", event_id) or stack.dead_letter("generic", event_id),
        timeout=90,
        what="the event applied or dead-lettered",
    )
    assert stack.dead_letter("generic", event_id) is None
    assert stack.activity_of("generic", event_id) is not None
