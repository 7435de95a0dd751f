"""JSON batching (`POST /v1.0/$batch`, the "Combine multiple HTTP requests using JSON batching" page):
the mechanics of running a batch's requests and answering for each. Which batches are refused is in
`rules.check_batch`; each request runs through the sandbox's own routes, rules and fault injection,
exactly as if it had been sent alone.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from devtools.graph_sandbox import rules
from devtools.graph_sandbox.call import Call
from devtools.graph_sandbox.errors import GraphHttpError, bad_request, error_response

Doc = dict[str, Any]
Execute = Callable[[Call], Awaitable[web.Response]]


def execution_order(requests: list[Doc]) -> list[Doc]:
    """The requests in an order where each comes after those it depends on (JSON_BATCHING,
    "Sequencing requests with the dependsOn property"); independent ones keep the batch's order. A
    circle of dependencies can never run: the batch is refused (400, status unconfirmed)."""
    by_id = {r["id"].casefold(): r for r in requests}
    ordered: list[Doc] = []
    placed: set[str] = set()
    visiting: set[str] = set()

    def place(request: Doc) -> None:
        key = request["id"].casefold()
        if key in placed:
            return
        if key in visiting:
            raise bad_request(f"The requests' dependsOn form a circle through {request['id']!r}.")
        visiting.add(key)
        for dependency in request.get("dependsOn") or []:
            place(by_id[dependency.casefold()])
        visiting.discard(key)
        placed.add(key)
        ordered.append(request)

    for request in requests:
        place(request)
    return ordered


def _item_call(request: Doc, version_root: str) -> Call:
    body = request.get("body")
    if body is None:
        raw = b""
    elif isinstance(body, str):  # "a base64 URL-encoded value, for example, when the body is an image"
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise bad_request("The request's body is neither a JSON object nor base64.") from None
    else:
        raw = json.dumps(body).encode()
    return Call.item(request["method"], version_root, request["url"], request.get("headers") or {}, raw)


def answer(request_id: str, response: web.Response) -> Doc:
    """One entry of `responses`: `id`, `status`, the `headers` the request's own answer carried
    (Content-Type, Retry-After...) and its `body`, JSON as JSON (base64 otherwise)."""
    doc: Doc = {"id": request_id, "status": response.status, "headers": dict(response.headers)}
    payload = response.body if isinstance(response.body, bytes) else b""
    if payload:
        if response.content_type == "application/json":
            doc["body"] = json.loads(payload)
        else:
            doc["body"] = base64.b64encode(payload).decode("ascii")
    return doc


async def run_batch(requests: list[Doc], version_root: str, execute: Execute) -> web.Response:
    """Run each request (dependents after their dependencies; a request whose dependency failed is not
    run and fails with 424 Failed Dependency), then answer 200 with every request's own answer.

    The outer status is 200 even when requests inside were throttled: JSON_BATCHING says a parseable
    batch is answered 200, each request with its own status. THROTTLING ("Throttling and batching")
    says the batch itself then fails with 424: the pages contradict each other; the sandbox follows
    the batching page, and the bridge's gateway reads `responses` under either status. Responses are
    given in the reverse of the running order ("Individual responses might appear in a different
    order than the requests"), so that a client matching them by position fails here first."""
    answers: dict[str, Doc] = {}
    for request in execution_order(requests):
        failed = [
            d for d in request.get("dependsOn") or [] if not 200 <= answers[d.casefold()]["status"] < 300
        ]
        if failed:
            response = error_response(
                424, "FailedDependency", f"Request {failed[0]!r} that this request depends on failed."
            )
        else:
            try:
                rules.check_batch_url(request["url"])
                call = _item_call(request, version_root)
            except GraphHttpError as exc:  # this request's own failure: the others still run
                response = error_response(exc.status, exc.code, exc.message, exc.headers)
            else:
                response = await execute(call)
        answers[request["id"].casefold()] = answer(request["id"], response)
    responses = list(reversed(answers.values()))
    return web.Response(
        status=200, text=json.dumps({"responses": responses}), content_type="application/json"
    )
