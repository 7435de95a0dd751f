"""HTTP functions: azure.functions request in, the ingestor's answer out.

The ingest modules (pydantic, the source formats) are imported by the first request, not with this
module: function_app imports it at start-up (see shared.functions.bridge).
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from typing import TYPE_CHECKING

import azure.functions as func

from shared import __version__
from shared.functions.bridge import LazyBridge

if TYPE_CHECKING:
    from shared.ingest.handler import WebhookResponse

log = logging.getLogger(__name__)


def webhook(bridge: LazyBridge, req: func.HttpRequest, endpoint: str = "webhook") -> func.HttpResponse:
    from shared.ingest.handler import WebhookRequest, WebhookResponse
    from shared.ingest.problems import PROBLEM_MEDIA_TYPE, Problem

    request = WebhookRequest(
        source=req.route_params.get("source", ""),
        headers={k.lower(): v for k, v in req.headers.items()},
        body=req.get_body() or b"",
        path_token=req.route_params.get("token") or None,
        endpoint=endpoint,
    )
    try:
        # Building the Bridge (first request only) is inside: a failure there is answered like a bug.
        return _to_http(bridge.get().ingestor.handle(request))
    except Exception as exc:
        # A bug must still answer in problem+json, with an id to find the logged traceback by. The
        # log carries the exception's type and where it was raised, never its message: messages
        # (a pydantic ValidationError's above all) quote the input, which is learner data.
        incident = os.urandom(16).hex()  # not uuid4: the uuid module costs every cold start
        log.error(
            "webhook failed unexpectedly: source=%s incident=%s error=%s\n%s",
            request.source,
            incident,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        problem = Problem(
            500,
            "internal-error",
            "Internal error",
            f"The delivery was not accepted; retry it. Incident {incident}.",
        )
        return _to_http(WebhookResponse(500, problem.to_json(), PROBLEM_MEDIA_TYPE))


def health(bridge: LazyBridge) -> func.HttpResponse:
    """200 even when degraded: the instance serves the other sources and the queue, so nothing should
    take it out of rotation; `status` and `sources.degraded` say what is set aside and why."""
    from shared.ingest.handler import WebhookResponse

    return _to_http(WebhookResponse(200, {**bridge.get().health(), "version": __version__}))


def _to_http(response: WebhookResponse) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(response.body) if response.body is not None else b"",
        status_code=response.status,
        headers=response.headers,
        mimetype=response.media_type,
        charset="utf-8",
    )
