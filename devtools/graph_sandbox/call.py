"""One Graph request as the sandbox's routes see it, whether it came over HTTP or as one item of a
JSON batch: both go through the same routes, rules and fault injection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy, MultiMapping


@dataclass(frozen=True)
class Call:
    method: str
    raw_path: str  # as sent, percent-encoded: OData keys are decoded by the routes themselves
    query: MultiMapping[str]
    headers: CIMultiDictProxy[str]
    body: bytes

    @classmethod
    async def of(cls, request: web.Request) -> Call:
        body = await request.read() if request.body_exists else b""
        return cls(request.method, request.url.raw_path, request.query, request.headers, body)

    @classmethod
    def item(cls, method: str, version_root: str, url: str, headers: Mapping[str, str], body: bytes) -> Call:
        """A batch item: `url` is relative to the version root (`/users` or `users`, with its query)."""
        path, _, query = url.partition("?")
        path = path if path.startswith("/") else f"/{path}"
        return cls(
            method.upper(),
            f"{version_root}{path}",
            MultiDictProxy(MultiDict(parse_qsl(query, keep_blank_values=True))),
            CIMultiDictProxy(CIMultiDict(headers)),
            body,
        )
