"""The HTTP side of the dev host: the host's request throttle, its routing, and the request the Python
worker hands a function.

Sources (Azure/azure-functions-host, 2024-10 snapshot):
- src/WebJobs.Script.WebHost/Middleware/HttpThrottleMiddleware.cs and HttpRequestQueue.cs: the
  throttle. Requests go through a queue of maxOutstandingRequests places (running and waiting) served by
  maxConcurrentRequests at once; a request that finds it full gets 429 with `X-FUNCTION-SCALEOUT: 1`
  (ScriptConstants.AntaresScaleOutHeaderName), no Retry-After and no body. The middleware wraps every
  request but the admin ones (WebJobsApplicationBuilderExtension.cs). The dynamic throttle
  (`dynamicThrottlesEnabled`) asks HostPerformanceManager.PerformanceCountersExceeded, which reads the
  counters only from the WEBSITE_COUNTERS_APP variable that the (Windows) App Service sandbox sets: on
  Linux, so on Flex Consumption, there are none and it never refuses. The dev host has no dynamic
  throttle for that reason.
- A user report, azure-functions-host issue #11790 (2026-05, open), says Flex Consumption ignores
  host.json's HTTP limits altogether; there, per-instance HTTP concurrency is the site's
  `functionAppConfig.scaleAndConcurrency.triggers.http.perInstanceConcurrency`. The dev host applies
  host.json's limits as the host's middleware would (unconfirmed on Flex).
- src/WebJobs.Script.WebHost/WebScriptHostHttpRoutesManager.cs: each HTTP function is an ASP.NET Core
  route under the routePrefix with an HttpMethodRouteConstraint: a request whose method the function
  does not declare matches no route, so it is a 404 (never a 405). ASP.NET Core matches route templates
  without regard to case (learn.microsoft.com/aspnet/core/fundamentals/routing, "Route templates":
  "Text matching is case-insensitive").
- src/WebJobs.Script.Grpc/MessageExtensions/GrpcMessageConversionExtensions.cs (`ToRpcHttp`): the
  worker gets each header once, its name lower-cased, repeated values joined with "," (StringValues
  .ToString()); query values the same, empty ones left out (the Python worker does not announce the
  nullable-dictionary capability).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import azure.functions as func
from aiohttp import web
from multidict import MultiMapping

from devtools.devhost.worker import Worker

if TYPE_CHECKING:
    from devtools.devhost.host import FunctionSpec, HttpOptions

log = logging.getLogger("devhost")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SCALE_OUT_HEADER = "X-FUNCTION-SCALEOUT"


class Throttle:
    """HttpThrottleMiddleware with its HttpRequestQueue, as aiohttp middleware (see the module doc)."""

    def __init__(self, options: HttpOptions) -> None:
        self.options = options
        self.outstanding = 0
        self.rejected = 0
        limit = options.max_concurrent_requests
        self._running = asyncio.Semaphore(limit) if limit > 0 else None

    @property
    def enabled(self) -> bool:
        """HttpThrottleMiddleware.ShouldEnable without the dynamic throttle (never fires on Linux)."""
        return self.options.max_outstanding_requests > 0 or self.options.max_concurrent_requests > 0

    def full(self) -> bool:
        limit = self.options.max_outstanding_requests
        return limit > 0 and self.outstanding >= limit

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.enabled or request.path.lower().startswith("/admin/"):
            return await handler(request)
        if self.full():
            self.rejected += 1
            log.info(
                "Http request queue limit of %d has been exceeded.", self.options.max_outstanding_requests
            )
            return web.Response(status=429, headers={SCALE_OUT_HEADER: "1"})
        self.outstanding += 1
        try:
            if self._running is None:
                return await handler(request)
            async with self._running:
                return await handler(request)
        finally:
            self.outstanding -= 1


# ---- routing ----------------------------------------------------------------------------------------

_PARAMETER = re.compile(r"\{(\*?)(\w+)(?::[^}?]*)?(\?)?\}")


def route_pattern(route_prefix: str, template: str) -> re.Pattern[str]:
    """A Functions route template as a case-insensitive regular expression over the request path.
    `{name}` is one segment, `{name?}` an optional one (trailing), `{*name}` the rest of the path;
    constraints (`{id:int}`) are not enforced (the dev host's simplification)."""
    segments = [s for s in (route_prefix.strip("/") + "/" + template.strip("/")).split("/") if s]
    pattern = ""
    for segment in segments:
        whole = _PARAMETER.fullmatch(segment)
        if whole is not None and whole.group(3):
            pattern += f"(?:/(?P<{whole.group(2)}>[^/]+))?"
        elif whole is not None and whole.group(1):
            pattern += f"(?:/(?P<{whole.group(2)}>.*))?"
        else:
            pattern += "/" + _segment(segment)
    return re.compile(f"^{pattern or '/'}/?$", re.IGNORECASE)


def _segment(segment: str) -> str:
    parts, last = [], 0
    for match in _PARAMETER.finditer(segment):
        parts.append(re.escape(segment[last : match.start()]))
        parts.append(f"(?P<{match.group(2)}>[^/]+?)")
        last = match.end()
    parts.append(re.escape(segment[last:]))
    return "".join(parts)


@dataclass(frozen=True)
class Route:
    spec: FunctionSpec
    pattern: re.Pattern[str]
    #: Upper-cased; None: every method (a trigger that declares none).
    methods: frozenset[str] | None


def http_routes(specs: list[FunctionSpec], route_prefix: str) -> list[Route]:
    routes = []
    for spec in specs:
        trigger = spec.trigger
        if trigger["type"] != "httpTrigger":
            continue
        template = trigger.get("route") or spec.name
        declared = trigger.get("methods")
        methods = frozenset(m.upper() for m in declared) if declared else None
        routes.append(Route(spec, route_pattern(route_prefix, template), methods))
        log.info("http   %-16s %s %s/%s", spec.name, ",".join(declared or ["*"]), route_prefix, template)
    # ASP.NET Core prefers literal segments over parameters; the longest literal text first is close.
    return sorted(routes, key=lambda r: -len(_PARAMETER.sub("", r.pattern.pattern)))


def match(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route serving `method path`, with its route values; None is the host's 404."""
    for route in routes:
        found = route.pattern.match(path)
        if found is not None and (route.methods is None or method.upper() in route.methods):
            return route, {k: v for k, v in found.groupdict().items() if v is not None}
    return None


def _joined(values: MultiMapping[str], *, lower: bool, drop_empty: bool) -> dict[str, str]:
    """Each key once with its values joined by "," (StringValues.ToString())."""
    joined: dict[str, list[str]] = {}
    for key, value in values.items():
        joined.setdefault(key.lower() if lower else key, []).append(value)
    return {k: ",".join(v) for k, v in joined.items() if not (drop_empty and not ",".join(v))}


@dataclass
class HostState:
    """What /admin/host/status reports (Azure/azure-functions-host src/WebJobs.Script.WebHost/Models/
    HostStatus.cs: id, state, version, instanceId, processUptime)."""

    host_id: str
    instance_id: str
    started: float

    def status(self) -> dict[str, Any]:
        return {
            "id": self.host_id,
            "state": "Running",
            "version": "devhost",
            "instanceId": self.instance_id,
            "processUptime": int((time.monotonic() - self.started) * 1000),
        }


def http_app(
    routes: list[Route], worker: Worker, throttle: Throttle | None = None, state: HostState | None = None
) -> web.Application:
    """One catch-all handler that routes as the host does (see the module doc)."""
    middlewares = [throttle.middleware] if throttle is not None else []
    # the app enforces its own body limit
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=middlewares)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        if state is not None and request.method == "GET" and request.path.lower() == "/admin/host/status":
            return web.json_response(state.status())
        found = match(routes, request.method, request.path)
        if found is None:
            return web.Response(status=404)
        route, values = found
        return await _invoke(route.spec, worker, request, values)

    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


async def _invoke(
    spec: FunctionSpec, worker: Worker, request: web.Request, values: dict[str, str]
) -> web.Response:
    req = func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=_joined(request.headers, lower=True, drop_empty=False),
        params=_joined(request.query, lower=False, drop_empty=True),
        route_params=values,
        body=await request.read(),
    )
    try:
        response = await worker.invoke(spec.name, spec.function, {spec.trigger["name"]: req}, has_return=True)
    except Exception:
        log.exception("function %s raised", spec.name)
        return web.Response(status=500)
    if not isinstance(response, func.HttpResponse):
        log.error("function %s returned %r, not an HttpResponse", spec.name, type(response).__name__)
        return web.Response(status=500)
    headers = dict(response.headers)
    headers.pop("Content-Type", None)
    return web.Response(
        status=response.status_code,
        body=response.get_body(),
        headers={
            **headers,
            "Content-Type": response.mimetype + (f"; charset={response.charset}" if response.charset else ""),
        },
    )
