"""Graph's error answers: `{"error": {"code", "message", "innerError"}}` with the matching status."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from aiohttp import web


class GraphHttpError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        injected: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        #: Made up by fault injection (counted apart from real answers), not by a rule.
        self.injected = injected


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": request_id,
            },
        }
    }
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers={"request-id": request_id, **(headers or {})},
    )


def not_found(what: str) -> GraphHttpError:
    return GraphHttpError(404, "NotFound", f"{what} was not found.")


def bad_request(message: str) -> GraphHttpError:
    return GraphHttpError(400, "BadRequest", message)
