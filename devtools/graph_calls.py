"""`python -m devtools.graph_calls [--events 50]`: the Graph requests the bridge makes per event, by
kind of event, from the sandbox's own counters (no faults injected).

On a fresh local stack it sends, one phase at a time, waiting for the queue to drain after each:
events that create new course activities (fresh learners, so user lookups are counted too), then a
progress update for each, then a redelivery of each update, then xAPI statements that are voided
(one record each: created, then deleted). It prints the requests of each phase per event.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from devtools.faultrun import drain, graph_calls
from devtools.localstack.settings import new_webhook_secret
from devtools.localstack.stack import PROVIDER_ID, LocalStack

LRS_CREDENTIALS = f"graph-calls:{uuid.uuid4().hex}"


def phase(stack: LocalStack, name: str, count: int, send: Any) -> None:
    _, before = graph_calls(stack)
    send()
    drain(stack, timeout=300)
    _, after = graph_calls(stack)
    used = after - before
    total = sum(used.values())
    detail = ", ".join(f"{kind} {n / count:.2f}" for kind, n in used.most_common())
    print(f"{name:<28} {total / count:5.2f} Graph requests per event  ({detail})")


def seed(stack: LocalStack, learners: list[str]) -> None:
    users = [{"userPrincipalName": u, "displayName": u, "mail": u} for u in learners]
    contents = [
        {
            "externalId": "calls-course",
            "title": "Calls",
            "contentWebUrl": "https://lms.example/calls",
            "languageTag": "en-us",
        }
    ]
    document = {"users": users, "contents": {PROVIDER_ID: contents}}
    httpx.post(f"{stack.sandbox}/_sandbox/seed", json=document, timeout=60).raise_for_status()


def statements(stack: LocalStack, bodies: list[dict[str, Any]]) -> None:
    headers = {
        "content-type": "application/json",
        "authorization": "Basic " + base64.b64encode(LRS_CREDENTIALS.encode()).decode(),
        "x-experience-api-version": "1.0.3",
    }
    stack.post(json.dumps(bodies).encode(), headers, path="xapi/lrs/statements").raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.graph_calls", description=__doc__)
    parser.add_argument("--events", type=int, default=50)
    n = parser.parse_args().events
    learners = [f"calls{i:04d}@calls.example" for i in range(n)]
    course = {"externalId": "calls-course"}

    def event(i: int, kind: str, percentage: int) -> dict[str, Any]:
        return {
            "eventId": f"{kind}-{i}",
            "occurredAt": "2026-11-20T10:00:00Z",
            "learner": {"email": learners[i]},
            "course": course,
            "status": "inProgress",
            "completionPercentage": percentage,
        }

    def statement(i: int) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"calls-{i}")),
            "actor": {"mbox": f"mailto:{learners[i]}"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
            "object": {"id": "https://lms.example/courses/calls-course"},
            "timestamp": "2026-11-20T11:00:00Z",
        }

    def voiding(i: int) -> dict[str, Any]:
        target = {"objectType": "StatementRef", "id": statement(i)["id"]}
        verb = {"id": "http://adlnet.gov/expapi/verbs/voided"}
        return {
            "id": str(uuid.uuid4()),
            "actor": {"mbox": f"mailto:{learners[i]}"},
            "verb": verb,
            "object": target,
        }

    with tempfile.TemporaryDirectory() as workdir:
        lrs = ({"format": "xapi", "courseId": "lastSegment"}, LRS_CREDENTIALS)
        stack = LocalStack(Path(workdir), new_webhook_secret(), more_sources={"lrs": lrs})
        stack.devhost_env = {"DEVHOST_LOG_LEVEL": "WARNING"}
        try:
            stack.start()
            seed(stack, learners)
            updates = [event(i, "update", 60) for i in range(n)]
            phase(stack, "new activity", n, lambda: stack.send([event(i, "new", 20) for i in range(n)]))
            phase(stack, "update (progress)", n, lambda: stack.send(updates))
            phase(stack, "redelivery", n, lambda: stack.send(updates))
            phase(
                stack, "xAPI statement (new)", n, lambda: statements(stack, [statement(i) for i in range(n)])
            )
            phase(
                stack,
                "void of its only statement",
                n,
                lambda: statements(stack, [voiding(i) for i in range(n)]),
            )
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
