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
    from shared.config.exceptions import ConfigurationError
    from shared.ingest.handler import WebhookResponse

log = logging.getLogger(__name__)

#: How long a platform should wait before retrying while the app is unconfigured (as for a source
#: set aside: an operator has to act).
UNCONFIGURED_RETRY_AFTER = "300"


def webhook(bridge: LazyBridge, req: func.HttpRequest, endpoint: str = "webhook") -> func.HttpResponse:
    from shared.ingest.handler import WebhookRequest, WebhookResponse
    from shared.ingest.problems import PROBLEM_MEDIA_TYPE, Problem

    if bridge.problem is not None:
        return _to_http(_unconfigured(bridge.problem))

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
    take it out of rotation; `status` and `sources.degraded` say what is set aside and why. 503
    `unhealthy` when an app-wide setting is missing or invalid: nothing works until it is fixed."""
    from shared.ingest.handler import WebhookResponse

    if bridge.problem is not None:
        report = {
            "status": "unhealthy",
            "settings": bridge.problem.settings,
            "problems": bridge.problem.problems,
            "version": __version__,
        }
        return _to_http(WebhookResponse(503, report, headers={"Retry-After": UNCONFIGURED_RETRY_AFTER}))
    return _to_http(WebhookResponse(200, {**bridge.get().health(), "version": __version__}))


def _unconfigured(problem: ConfigurationError) -> WebhookResponse:
    """503 problem+json naming the app settings to fix (never a value); the platform retries later."""
    from shared.functions.bridge import UNCONFIGURED
    from shared.ingest.handler import WebhookResponse
    from shared.ingest.problems import PROBLEM_MEDIA_TYPE, Problem
    from shared.telemetry import Outcome, record_event

    settings = ", ".join(problem.settings) or "the app-wide settings"
    refusal = Problem(
        503,
        "app-not-configured",
        "App not configured",
        f"The bridge takes no deliveries until the app settings {settings} are fixed; nothing was "
        "accepted. Retry the delivery later.",
        headers={"Retry-After": UNCONFIGURED_RETRY_AFTER},
        extensions={"settings": problem.settings},
    )
    record_event("unknown", Outcome.RECEIVED)  # the URL's source is the caller's word: not a dimension
    record_event("unknown", Outcome.REJECTED, reason=refusal.slug)
    log.warning("%s: webhook refused with 503 (%s)", UNCONFIGURED, settings)
    return WebhookResponse(503, refusal.to_json(), PROBLEM_MEDIA_TYPE, dict(refusal.headers))


def _to_http(response: WebhookResponse) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(response.body) if response.body is not None else b"",
        status_code=response.status,
        headers=response.headers,
        mimetype=response.media_type,
        charset="utf-8",
    )
