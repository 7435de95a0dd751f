"""The OpenAPI description (openapi/bridge.openapi.json) is valid OpenAPI 3.1, its references and
examples hold, and the answers the end-to-end stack cannot give on demand (the host's 429, a bug's 500,
the three 503s) are the ones it declares. tests/e2e/test_openapi_description.py checks the rest against
the dev host."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import azure.functions as func
import pytest
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator

from devtools.devhost.host import HttpOptions, load_functions
from devtools.devhost.httptrigger import Throttle, http_app, http_routes
from devtools.devhost.worker import Worker
from shared.config.settings import load_settings
from shared.functions import http
from shared.functions.bridge import LazyBridge
from shared.runtime import Bridge
from shared.sources.formats.generic import signed_headers
from shared.storage.queues import QueueUnavailable
from tests import api_description as api
from tests.api_description import Answer, Key
from tests.builders import TEST_SECRET, dumps, event

#: The OpenAPI 3.1 JSON Schema (see openapi/README.md for where the copy comes from).
OAS_SCHEMA = api.ROOT / "openapi" / "oas-3.1.schema.json"
XAPI_CREDENTIALS = "lrs-key:lrs-secret"
ENV = {
    "BRIDGE_SOURCES": json.dumps(
        {
            "generic": {"format": "generic"},
            "lrs": {"format": "xapi"},
            "vaulted": {"format": "generic"},
            "vaulted-lrs": {"format": "xapi"},
        }
    ),
    "BRIDGE_SOURCE_GENERIC_SECRET": TEST_SECRET,
    "BRIDGE_SOURCE_LRS_SECRET": XAPI_CREDENTIALS,
    # Not resolved yet (the first `azd up`): the source is set aside and answers 503.
    "BRIDGE_SOURCE_VAULTED_SECRET": "@Microsoft.KeyVault(VaultName=kv-unit;SecretName=vaulted)",
    "BRIDGE_SOURCE_VAULTED_LRS_SECRET": "@Microsoft.KeyVault(VaultName=kv-unit;SecretName=lrs)",
    "BRIDGE_PROVIDER_REGISTRATION_ID": "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90",
    "BRIDGE_STORAGE": "UseDevelopmentStorage=true",
}


# ---- (a) the document ------------------------------------------------------------------------------


def _walk(node: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    yield pointer, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{pointer}/{index}")


def test_the_description_is_valid_openapi_3_1() -> None:
    schema = json.loads(OAS_SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(Draft202012Validator(schema).iter_errors(api.document()), key=lambda e: e.json_path)
    assert not errors, [f"{e.json_path}: {e.message}" for e in errors[:5]]


def test_every_schema_in_it_is_a_valid_json_schema_and_every_reference_resolves() -> None:
    # The OpenAPI 3.1 schema checks Schema Objects only against the dialect's meta-schema by reference;
    # checking each one as 2020-12 here, and resolving each $ref, catches what it lets through.
    schemas = [node for pointer, node in _walk(api.document()) if pointer.endswith("/schema")]
    schemas += list(api.document()["components"]["schemas"].values())
    for schema in schemas:
        Draft202012Validator.check_schema(schema)
    resolver = api.registry().resolver(api.DOCUMENT.as_uri())
    for pointer, node in _walk(api.document()):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            assert resolver.lookup(node["$ref"]).contents is not None, pointer


def test_every_example_exists_and_fits_its_media_type() -> None:
    checked = 0
    for pointer, node in _walk(api.document()):
        if not (isinstance(node, dict) and "examples" in node and "schema" in node):
            continue
        for name, example in node["examples"].items():
            if "externalValue" in example:
                value = json.loads(
                    (api.DOCUMENT.parent / example["externalValue"]).read_text(encoding="utf-8")
                )
            else:
                value = example["value"]
            errors = list(api.validator(f"{pointer}/schema").iter_errors(value))
            assert not errors, f"{pointer} example {name}: {errors[0].message}"
            checked += 1
    assert checked >= 15


def _external_examples() -> list[tuple[str, str]]:
    return [
        (f"{pointer}/examples/{name}", example["externalValue"])
        for pointer, node in _walk(api.document())
        if isinstance(node, dict) and isinstance(node.get("examples"), dict)
        for name, example in node["examples"].items()
        if isinstance(example, dict) and "externalValue" in example
    ]


def test_the_docs_render_every_vendor_example_from_its_fixture() -> None:
    # neoteroi-mkdocs renders an example's `value` only: the build hook gives it a copy with each
    # fixture inlined (devtools/docs/openapi_examples.py); tests/unit/test_review20_findings.py checks
    # the built page.
    from devtools.docs import hooks, openapi_examples

    external = _external_examples()
    assert len(external) >= 10
    inlined = openapi_examples.with_inline_values(api.document())
    schema = json.loads(OAS_SCHEMA.read_text(encoding="utf-8"))
    assert not list(Draft202012Validator(schema).iter_errors(inlined))  # still OpenAPI 3.1
    nodes = dict(_walk(inlined))
    for pointer, reference in external:
        fixture = json.loads((api.DOCUMENT.parent / reference).read_text(encoding="utf-8"))
        assert nodes[pointer] == {**nodes[pointer], "value": fixture}, pointer
        assert "externalValue" not in nodes[pointer], pointer
    assert len(_external_examples()) == len(external)  # the repository's description is left as it is

    class Page:
        file = type("File", (), {"src_uri": "reference/http-api.md"})()

    plugin = type("Plugin", (), {"config": {"use_pymdownx": True}})()
    config = type("Config", (), {"plugins": {hooks.OAD_PLUGIN: plugin}, "docs_dir": str(api.ROOT / "docs")})()
    page = (api.ROOT / "docs" / "reference" / "http-api.md").read_text(encoding="utf-8")
    rendered = hooks.render_description(page, page=Page(), config=config)  # type: ignore[arg-type]
    assert "[OAD(" not in rendered
    compact = re.sub(r"\s+", "", rendered)
    for pointer, reference in external:
        fixture = json.loads((api.DOCUMENT.parent / reference).read_text(encoding="utf-8"))
        text = json.dumps(fixture, ensure_ascii=False, separators=(",", ":"))
        assert re.sub(r"\s+", "", text) in compact, pointer


def test_the_site_publishes_every_file_the_examples_name_where_the_description_points() -> None:
    from devtools.docs import openapi_examples

    published = openapi_examples.published_files(api.document())
    references = {reference for _, reference in _external_examples()}
    assert len(published) == len(references)
    site = Path("/site")
    for reference in references:
        # Where a tool reading /openapi/bridge.openapi.json looks for it.
        at = (site / "openapi" / reference).resolve().relative_to(site)
        assert at.as_posix() in published, reference
        assert (api.ROOT / at).is_file(), reference
    leaving = {"examples": {"x": {"externalValue": "../../elsewhere.json"}}}
    with pytest.raises(ValueError, match="leaves the repository"):
        openapi_examples.published_files(leaving)


def test_every_refusal_names_a_problem_type_the_docs_document() -> None:
    answers = (api.ROOT / "docs" / "connect" / "index.md").read_text(encoding="utf-8")  # "Answers"
    for key in api.documented():
        if key.problem is not None:
            assert f"| {key.status} | `{key.problem}` |" in answers, key


# ---- (b) answers the end-to-end stack cannot give on demand ------------------------------------------


def _answer(response: func.HttpResponse) -> Answer:
    """As the dev host (and the real host) sends it: the mimetype and charset become Content-Type."""
    headers = {**dict(response.headers), "Content-Type": f"{response.mimetype}; charset={response.charset}"}
    return Answer(response.status_code, headers, response.get_body())


class _Queue:
    """Storage that fails part way: every message but the last is queued."""

    def send_all(self, queue: str, messages: Sequence[str]) -> None:
        raise QueueUnavailable("storage is down", sent=range(len(messages) - 1))

    def send_later(self, queue: str, message: str, delay_seconds: float) -> None:
        raise QueueUnavailable("storage is down")


class _Broken(LazyBridge):
    def get(self) -> Bridge:
        raise RuntimeError("a bug")


def _deliveries(source: str) -> dict[str, func.HttpRequest]:
    """One valid delivery per webhook operation, and an xAPI one, to `source` (the xAPI route's source
    is `lrs`, or `vaulted-lrs` when `source` is the one set aside)."""
    body = dumps([event(eventId="evt-openapi-1"), event(eventId="evt-openapi-2")])
    signed = signed_headers(body, TEST_SECRET, "msg_openapi", datetime.now(UTC))
    statement = (api.ROOT / "tests" / "fixtures" / "xapi" / "cmi5-course-satisfied.json").read_bytes()
    basic = "Basic " + base64.b64encode(XAPI_CREDENTIALS.encode()).decode()
    xapi_headers = {
        "content-type": "application/json",
        "authorization": basic,
        "x-experience-api-version": "1.0.3",
    }
    xapi_source = "vaulted-lrs" if source == "vaulted" else "lrs"
    return {
        "postWebhook": func.HttpRequest(
            "POST",
            f"http://h/api/webhooks/{source}",
            headers=signed,
            route_params={"source": source},
            body=body,
        ),
        "postWebhookWithToken": func.HttpRequest(
            "POST",
            f"http://h/api/webhooks/{source}/ignored-token",
            headers=signed,
            route_params={"source": source, "token": "ignored-token"},
            body=body,
        ),
        "postXapiStatements": func.HttpRequest(
            "POST",
            f"http://h/api/xapi/{xapi_source}/statements",
            headers=xapi_headers,
            route_params={"source": xapi_source},
            body=statement,
        ),
    }


def _call(bridge: LazyBridge, operation_id: str, request: func.HttpRequest) -> Answer:
    endpoint = "xapi" if operation_id == "postXapiStatements" else "webhook"
    return _answer(http.webhook(bridge, request, endpoint=endpoint))


def test_the_503s_and_the_500_are_the_answers_the_description_declares() -> None:
    reached: set[Key] = set()
    storage_down = LazyBridge(load_settings(ENV), queues=_Queue())
    for operation_id, request in _deliveries("generic").items():
        reached.add(api.check(operation_id, _call(storage_down, operation_id, request)))
        reached.add(api.check(operation_id, _call(_Broken(load_settings(ENV)), operation_id, request)))
    for operation_id, request in _deliveries("vaulted").items():
        reached.add(api.check(operation_id, _call(storage_down, operation_id, request)))
    unconfigured = LazyBridge.from_environment({**ENV, "BRIDGE_PROVIDER_REGISTRATION_ID": ""})
    for operation_id, request in _deliveries("generic").items():
        reached.add(api.check(operation_id, _call(unconfigured, operation_id, request)))
    reached.add(api.check("getHealth", _answer(http.health(unconfigured))))
    assert reached == {key for key in api.REACHED_BY_UNIT_TEST if key.status not in (422, 429)}


def test_an_assignment_sent_to_a_bridge_without_assignments_is_the_422_the_description_declares() -> None:
    bridge = LazyBridge(load_settings(ENV), queues=_Queue())
    body = dumps(
        [
            event(
                eventId="evt-openapi-assigned",
                assignment={"type": "required", "dueAt": "2026-12-31T17:00:00Z"},
            )
        ]
    )
    reached = set()
    for operation_id in ("postWebhook", "postWebhookWithToken"):
        signed = signed_headers(body, TEST_SECRET, "msg_openapi_assigned", datetime.now(UTC))
        token = {"token": "ignored-token"} if operation_id == "postWebhookWithToken" else {}
        request = func.HttpRequest(
            "POST",
            "http://h/api/webhooks/generic",
            headers=signed,
            route_params={"source": "generic", **token},
            body=body,
        )
        reached.add(api.check(operation_id, _call(bridge, operation_id, request)))
    assert reached == {key for key in api.REACHED_BY_UNIT_TEST if key.status == 422}


async def test_the_hosts_429_is_the_answer_the_description_declares() -> None:
    import function_app

    routes = http_routes(load_functions(function_app.app), "api")
    throttle = Throttle(HttpOptions(max_outstanding_requests=1))
    throttle.outstanding = 1  # every place taken
    client = TestClient(TestServer(http_app(routes, cast(Worker, None), throttle)))
    await client.start_server()
    reached = set()
    try:
        for operation_id, path, method, _ in api.operations():
            url = path.replace("{source}", "generic").replace("{token}", "t")
            refused = await client.request(method.upper(), url, data=b"{}")
            answer = Answer(refused.status, dict(refused.headers), await refused.read())
            reached.add(api.check(operation_id, answer))
    finally:
        await client.close()
    assert reached == {key for key in api.REACHED_BY_UNIT_TEST if key.status == 429}


def test_the_description_sits_where_a_newcomer_looks() -> None:
    assert Path(api.DOCUMENT).relative_to(api.ROOT).as_posix() == "openapi/bridge.openapi.json"
    assert "openapi/bridge.openapi.json" in (api.ROOT / "README.md").read_text(encoding="utf-8")
    assert "[OAD(./openapi/bridge.openapi.json)]" in (
        api.ROOT / "docs" / "reference" / "http-api.md"
    ).read_text(encoding="utf-8")
