"""Review of issue 19 ("Real tenants"), against the local stack (dev host, Azurite, the Graph sandbox
through msgraph-sdk): each test states what the issue, the README or Graph's documented rules require,
and fails on the code as reviewed."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.e2e.stack import PROVIDER_ID, Stack, wait_for
from tests.e2e.test_graph_truth import (
    PROGRESS,
    lrs_record,
    new_course,
    send_statements,
    statement,
    voiding,
)


def sync(stack: Stack, enabled: bool) -> None:
    answer = httpx.post(
        f"{stack.sandbox}/_sandbox/tenant", json={"courseActivitySync": {PROVIDER_ID: enabled}}, timeout=10
    )
    answer.raise_for_status()


def test_a_voiding_refused_while_sync_is_off_is_dead_lettered_for_replay(stack: Stack) -> None:
    """Issue 19: `providerNotEnabled` is "dead-lettered with a reason that says what to fix, counted in
    `status`, and alerted on"; README "Deploy", step 4: once sync is on, `replay --reason
    providerNotEnabled`; GUIDE: every accepted event is delivered to Graph or kept, with its reason.
    An LRS voids a completion while the provider's sync is off: the sandbox refuses the PATCH (400
    "This provider isn't enabled for the given tenant."), and the bridge acknowledges the voiding
    (shared.delivery.upsert `_withdraw_if_possible` swallows the PermanentFailure): no dead letter,
    no metric, nothing to replay, and Viva Learning keeps the voided completion once sync is back."""
    course, progress, done = new_course(stack), str(uuid.uuid4()), str(uuid.uuid4())
    send_statements(stack, [statement("progressed", course, progress, extensions={PROGRESS: 40})])
    wait_for(lambda: lrs_record(stack, course), what="the record in progress")
    send_statements(stack, [statement("completed", course, done, completion=True)])
    record = wait_for(
        lambda: r if (r := lrs_record(stack, course)) and r["status"] == "completed" else None,
        what="the completion",
    )
    voided = voiding(done)
    sync(stack, False)
    try:
        send_statements(stack, [voided])
        refused = wait_for(
            lambda: [
                r
                for r in stack.requests_for(record["id"])
                if r["method"] in ("PATCH", "DELETE") and r["status"] == 400
            ],
            timeout=30,
            what="the voiding's write refused by the sandbox",
        )
        assert refused
        time.sleep(3)  # the worker records what it does with the refusal
        letter = stack.dead_letter("lrs", voided["id"])
    finally:
        sync(stack, True)
    still = lrs_record(stack, course)
    assert still is not None
    assert still["status"] == "completed"  # Viva Learning still shows the voided completion
    assert letter is not None, "the refused voiding left no dead letter"
    assert letter.reason == "providerNotEnabled"
