"""Issue 9's hostile deliveries over HTTP, through the dev host: each got a 500 or a 503 before; each
now gets a 4xx (or is accepted with what it could not use listed), and never a 5xx."""

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest

from shared.sources.formats.generic import signed_headers
from tests.builders import FIXTURES, TEST_SECRET, event
from tests.e2e.stack import CANVAS_KEY, Stack, wait_for

PROBLEM = "application/problem+json"
LRS = {
    "content-type": "application/json",
    "authorization": "Basic " + base64.b64encode(b"lrs-key:lrs-secret").decode(),
    "x-experience-api-version": "1.0.3",
}
SENSOR = {"content-type": "application/json", "authorization": "Bearer sensor-token"}
DEEP_LIST = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 20_000 + b"1" + b"}" * 20_000


def generic(stack: Stack, body: bytes) -> httpx.Response:
    headers = signed_headers(body, TEST_SECRET, f"msg_{uuid.uuid4().hex}", datetime.now(UTC))
    return stack.post(body, headers)


def statement(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "xapi/cmi5-course-satisfied.json").read_bytes())
    document["id"] = str(uuid.uuid4())
    document.update(changes)
    return document


def caliper(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "caliper/envelope-tooluse-progress.json").read_bytes())
    document["data"] = [{**item, **changes, "id": f"urn:uuid:{uuid.uuid4()}"} for item in document["data"]]
    return document


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
def test_deeply_nested_json_is_400_on_every_format(stack: Stack, body: bytes) -> None:
    assert_problem(generic(stack, body), 400)
    assert_problem(stack.post(body, LRS, path="xapi/lrs/statements"), 400)
    assert_problem(stack.post(body, SENSOR, source="sensor"), 400)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_generic_timestamps_at_the_calendars_edges_are_400_naming_the_field(stack: Stack, when: str) -> None:
    for field in ("occurredAt", "startedAt"):
        problem = assert_problem(
            generic(stack, json.dumps(event(eventId=str(uuid.uuid4()), **{field: when})).encode()), 400
        )
        assert [e["pointer"] for e in problem["errors"]] == [f"/{field}"]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", 1e20])
def test_xapi_and_caliper_timestamps_at_the_edges_are_answered_not_crashed(stack: Stack, when: Any) -> None:
    xapi = stack.post(json.dumps(statement(timestamp=when)).encode(), LRS, path="xapi/lrs/statements")
    assert xapi.status_code in (200, 400), xapi.text
    sensor = stack.post(json.dumps(caliper(eventTime=when)).encode(), SENSOR, source="sensor")
    assert sensor.status_code == 200, sensor.text  # the event is ignored (invalidEvent), not refused


def test_learnworlds_epoch_timestamps_at_the_edges_are_answered_not_crashed(stack: Stack) -> None:
    document = json.loads((FIXTURES / "learnworlds/course-completed.json").read_bytes())
    headers = {"content-type": "application/json", "learnworlds-webhook-signature": "lw-shared-signature"}
    for when in (1e20, -1e20, 10**30):
        body = json.dumps(_replace_numbers(document, when)).encode()
        response = stack.post(body, headers, source="learnworlds")
        assert response.status_code in (202, 400), response.text


def _replace_numbers(value: Any, number: Any) -> Any:
    if isinstance(value, dict):
        return {k: _replace_numbers(v, number) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_numbers(v, number) for v in value]
    return number if isinstance(value, int | float) and not isinstance(value, bool) else value


@pytest.mark.parametrize(
    "document",
    [
        {**caliper(), "data": [7, *caliper()["data"]]},
        caliper(object={"id": "https://lms.contoso.example/courses/1", "type": ["CourseOffering"]}),
        caliper(generated={"type": "AggregateMeasureCollection", "items": 7}),
    ],
    ids=["data-item-a-number", "type-a-list", "generated-items-a-number"],
)
def test_caliper_wrong_shapes_inside_valid_json_are_answered(stack: Stack, document: dict[str, Any]) -> None:
    response = stack.post(json.dumps(document).encode(), SENSOR, source="sensor")
    assert response.status_code == 200, response.text


def test_a_canvas_event_name_that_is_a_list_is_ignored(stack: Stack) -> None:
    claims = json.loads((FIXTURES / "canvas/course-progress.json").read_bytes())
    claims["metadata"]["event_name"] = ["course_progress"]
    claims["exp"] = int(time.time()) + 300
    token = jwt.encode(claims, CANVAS_KEY, algorithm="RS256", headers={"kid": "canvas-e2e"})
    response = stack.post(token.encode(), {"content-type": "application/jwt"}, source="canvas")
    assert response.status_code == 202, response.text
    assert [i["reason"] for i in response.json()["ignored"]] == ["eventNotProgress"]


def test_an_xapi_parent_activity_with_a_numeric_id_is_400(stack: Stack) -> None:
    document = statement(
        object={"objectType": "Activity", "id": "https://lms.contoso.example/lessons/1"},
        context={"contextActivities": {"parent": [{"id": 42}]}},
    )
    problem = assert_problem(stack.post(json.dumps(document).encode(), LRS, path="xapi/lrs/statements"), 400)
    assert any("/context/contextActivities/parent" in e["pointer"] for e in problem["errors"])


@pytest.mark.parametrize("value", [b"Bearer \xff", b"Basic \xff\xfe", b"\xff"])
def test_credentials_that_are_not_utf8_are_401(stack: Stack, value: bytes) -> None:
    body = json.dumps(caliper()).encode()
    response = httpx.post(
        f"{stack.bridge}/webhooks/sensor",
        content=body,
        headers=[(b"content-type", b"application/json"), (b"authorization", value)],
        timeout=30,
    )
    assert_problem(response, 401)
    lrs = httpx.post(
        f"{stack.bridge}/xapi/lrs/statements",
        content=body,
        headers=[
            (b"content-type", b"application/json"),
            (b"authorization", value),
            (b"x-experience-api-version", b"1.0.3"),
        ],
        timeout=30,
    )
    assert_problem(lrs, 401)


def test_a_correctly_signed_body_that_is_not_utf8_is_400_not_401(stack: Stack) -> None:
    body = b'{"eventId": "\xff\xfe"}'
    key = base64.b64decode(TEST_SECRET.removeprefix("whsec_"))
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    import hashlib
    import hmac

    signature = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(signature).decode(),
    }
    problem = assert_problem(stack.post(body, headers), 400)
    assert "UTF-8" in problem["detail"]


def test_a_voiding_statement_with_a_60kb_target_is_400_and_nothing_of_its_batch_is_queued(
    stack: Stack,
) -> None:
    first = statement()
    voiding = {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": "mailto:lms-admin@contoso.example"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}},
        "object": {"objectType": "StatementRef", "id": "x" * 60_000},
    }
    response = stack.post(json.dumps([first, voiding]).encode(), LRS, path="xapi/lrs/statements")
    assert_problem(response, 400)
    alone = stack.post(json.dumps(voiding).encode(), LRS, path="xapi/lrs/statements")
    assert_problem(alone, 400)
    # The valid first statement was not queued: a retry after fixing the batch is the only delivery.
    time.sleep(2)
    assert stack.delivery("lrs", first["id"]) is None


def test_refusals_never_put_the_payload_or_the_learner_in_the_logs(stack: Stack) -> None:
    marker = f"learner-{uuid.uuid4().hex}"
    document = statement(
        actor={"mbox": f"mailto:{marker}@contoso.example"},
        object={"objectType": "Activity", "id": "https://lms.contoso.example/lessons/1"},
        context={"contextActivities": {"parent": [{"id": 42, "definition": {"name": {"en": marker}}}]}},
    )
    assert stack.post(json.dumps(document).encode(), LRS, path="xapi/lrs/statements").status_code == 400
    body = json.dumps(event(eventId=str(uuid.uuid4()), learner={"email": f"{marker}@x"}, occurredAt=1e20))
    assert generic(stack, body.encode()).status_code == 400
    time.sleep(0.5)
    assert marker not in (stack.workdir / "devhost.log").read_text(encoding="utf-8", errors="replace")


def test_a_bare_caliper_event_is_read_as_if_enveloped(stack: Stack) -> None:
    [bare] = caliper()["data"]
    response = stack.post(json.dumps(bare).encode(), SENSOR, source="sensor")
    assert response.status_code == 200, response.text
    wait_for(lambda: stack.delivery("sensor", bare["id"]), timeout=60, what="the bare event, applied")
    [second] = caliper()["data"]
    assert stack.post(json.dumps([second]).encode(), SENSOR, source="sensor").status_code == 200
    wait_for(
        lambda: stack.delivery("sensor", second["id"]), timeout=60, what="the array of bare events, applied"
    )


def test_during_a_rotation_the_old_and_the_new_token_are_both_accepted(stack: Stack) -> None:
    for token in ("sensor-token", "sensor-token-next"):
        headers = {**SENSOR, "authorization": f"Bearer {token}"}
        assert stack.post(json.dumps(caliper()).encode(), headers, source="sensor").status_code == 200
    wrong = {**SENSOR, "authorization": "Bearer sensor-token sensor-token-next"}
    assert_problem(stack.post(json.dumps(caliper()).encode(), wrong, source="sensor"), 401)


def test_a_canvas_jwt_without_exp_is_401(stack: Stack) -> None:
    claims = json.loads((FIXTURES / "canvas/course-progress.json").read_bytes())
    token = jwt.encode(claims, CANVAS_KEY, algorithm="RS256", headers={"kid": "canvas-e2e"})
    assert_problem(stack.post(token.encode(), {"content-type": "application/jwt"}, source="canvas"), 401)
