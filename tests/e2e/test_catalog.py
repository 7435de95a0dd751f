"""The course catalog end to end: `catalog push` through msgraph-sdk into the sandbox, then events for
the new courses apply at once; the registerContent option registers a course from its event."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.builders import event
from tests.e2e.stack import PARTNER_SECRET, PROVIDER_ID, Stack, cli, wait_for

ROOT = Path(__file__).resolve().parents[2]


def content(stack: Stack, external_id: str) -> dict[str, Any] | None:
    key = external_id.replace("'", "''")
    provider = f"{stack.sandbox}/v1.0/employeeExperience/learningProviders/{PROVIDER_ID}"
    url = f"{provider}/learningContents(externalId='{key}')"
    response = httpx.get(url, headers={"x-sandbox-client": "test"}, timeout=10)
    return response.json() if response.status_code == 200 else None


def test_pushed_courses_exist_and_their_events_apply_at_once(stack: Stack, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "externalId,title,contentWebUrl,languageTag,duration,skillTags\n"
        f"push-{tag}-a,Difference Engines,https://academy.contoso.example/a,en-us,PT1H30M,maths; gears\n"
        f"push-{tag}-b,Analytical Engines,https://academy.contoso.example/b,en-gb,,\n"
        f"push-{tag}-c,,https://academy.contoso.example/c,en-us,,\n",
        encoding="utf-8",
    )
    pushed = cli(stack, "catalog", "push", str(catalog))
    assert pushed.returncode == 1, pushed.stderr  # one invalid line
    assert "2 created, 0 updated, 1 invalid" in pushed.stdout
    assert "invalid line 4: title" in pushed.stderr
    created = content(stack, f"push-{tag}-a")
    assert created is not None
    assert (created["title"], created["duration"], created["skillTags"]) == (
        "Difference Engines",
        "PT1H30M",
        ["maths", "gears"],
    )

    event_id = f"cat-{uuid.uuid4()}"
    stack.send(event(eventId=event_id, course={"externalId": f"push-{tag}-a"}))
    record = wait_for(lambda: stack.activity_of("generic", event_id), what="the event for the new course")
    assert record["learningContentId"] == created["id"]
    assert stack.dead_letter("generic", event_id) is None

    again = cli(stack, "catalog", "push", "--json", str(catalog))
    summary = json.loads(again.stdout)
    assert (summary["created"], summary["updated"], len(summary["invalid"])) == (0, 2, 1)
    assert summary["invalid"][0]["where"] == "line 4"


def test_register_content_registers_an_unknown_course_from_its_event(stack: Stack) -> None:
    course = {
        "externalId": f"reg-{uuid.uuid4().hex[:8]}",
        "title": "Notes by the Translator",
        "url": "https://academy.contoso.example/notes",
    }
    event_id = f"reg-{uuid.uuid4()}"
    response = stack.send(event(eventId=event_id, course=course), source="registering", secret=PARTNER_SECRET)
    assert response.status_code == 202, response.text
    record = wait_for(
        lambda: stack.activity_of("registering", event_id), what="the registered course's record"
    )
    registered = content(stack, course["externalId"])
    assert registered is not None
    assert (registered["title"], registered["contentWebUrl"], registered["languageTag"]) == (
        "Notes by the Translator",
        "https://academy.contoso.example/notes",
        "en-gb",
    )
    assert record["learningContentId"] == registered["id"]


def test_a_source_without_register_content_still_parks_unknown_courses(stack: Stack) -> None:
    course = {"externalId": f"unreg-{uuid.uuid4().hex[:8]}", "title": "T", "url": "https://x.example/t"}
    event_id = f"unreg-{uuid.uuid4()}"
    stack.send(event(eventId=event_id, course=course))
    letter = wait_for(lambda: stack.dead_letter("generic", event_id), what="the parked event")
    assert letter.reason == "contentNotFound"
    assert content(stack, course["externalId"]) is None


def test_unreachable_graph_is_one_line_and_exit_2(stack: Stack) -> None:
    catalog = ROOT / "samples" / "catalog" / "catalog.json"
    result = cli(
        stack, "catalog", "push", str(catalog), env={"BRIDGE_GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0"}
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: Graph could not be reached")
    assert result.stderr.count("\n") == 1
