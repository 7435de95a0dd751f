"""Run-time fault injection and request accounting, driven through `/_sandbox/faults`.

Faults are drawn per Graph request (never for `/_sandbox/*`), and per request inside a JSON batch (the
`$batch` request itself takes only scripted faults and the latency). `failNext` scripts exact failures for
tests; the rates drive soak and fault-injection runs. Injected answers are counted apart from real ones,
so a run can report Graph calls per event without the failures it provoked.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from devtools.graph_sandbox import rules
from devtools.graph_sandbox.errors import GraphHttpError


class ScriptedFault(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    status: int = Field(ge=400, le=599)
    retry_after_seconds: int | None = None
    #: A 429 or 503 as the learning API documents it: the wait in the message ("Retry after 2
    #: minutes"), code tooManyRequests or serviceUnavailable, no Retry-After header unless
    #: `retry_after_seconds` is given too (rules.throttled_message).
    retry_after_minutes: int | None = Field(default=None, ge=0, le=1440)
    method: str | None = None  # only requests with this method take the fault
    path_contains: str | None = None


class FaultSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=60_000)
    latency_jitter_ms: int = Field(default=0, ge=0, le=60_000)
    rate_429: float = Field(default=0.0, ge=0, le=1, alias="rate429")
    rate_503: float = Field(default=0.0, ge=0, le=1, alias="rate503")
    rate_timeout: float = Field(default=0.0, ge=0, le=1)
    timeout_seconds: float = Field(default=35.0, ge=0, le=600)
    retry_after_seconds: int = Field(default=1, ge=0, le=3600)
    seed: int | None = None
    fail_next: list[ScriptedFault] = Field(default_factory=list)


class FaultInjector:
    def __init__(self) -> None:
        self.settings = FaultSettings()
        self._random = random.Random()
        self.requests: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()

    def configure(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._random = random.Random(settings.seed)

    def stats(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "injected": dict(self.injected)}

    def reset_stats(self) -> None:
        self.requests.clear()
        self.injected.clear()

    async def before(
        self, method: str, path: str, kind: str, *, delay: bool = True, draw: bool = True
    ) -> None:
        """Delay (unless `delay` is off), then maybe raise an injected error: a scripted one, or one
        drawn at the configured rates (unless `draw` is off). `kind` is the route's low-cardinality
        name."""
        s = self.settings
        if delay and (s.latency_ms or s.latency_jitter_ms):
            jitter = self._random.uniform(0, s.latency_jitter_ms) if s.latency_jitter_ms else 0
            await asyncio.sleep((s.latency_ms + jitter) / 1000)
        fault = self._scripted(method, path) or (self._drawn() if draw else None)
        if fault is None:
            return
        status, retry_after, minutes = fault
        self.injected[f"{method} {kind} {status}"] += 1
        if status == 0:  # a timeout: hold the request, then answer as an overloaded gateway would
            await asyncio.sleep(s.timeout_seconds)
            status, retry_after = 504, None
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if minutes is not None:  # the learning API's own answer (rules.ERROR_CODES)
            code = {429: "tooManyRequests", 503: "serviceUnavailable"}.get(status, "InjectedFault")
            raise GraphHttpError(status, code, rules.throttled_message(minutes), headers, injected=True)
        code = {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "GatewayTimeout"}.get(
            status, "InjectedFault"
        )
        raise GraphHttpError(status, code, "Injected by the Graph sandbox.", headers, injected=True)

    def _scripted(self, method: str, path: str) -> tuple[int, int | None, int | None] | None:
        for index, fault in enumerate(self.settings.fail_next):
            if fault.method and fault.method.upper() != method:
                continue
            if fault.path_contains and fault.path_contains not in path:
                continue
            del self.settings.fail_next[index]
            return fault.status, fault.retry_after_seconds, fault.retry_after_minutes
        return None

    def _drawn(self) -> tuple[int, int | None, int | None] | None:
        s = self.settings
        roll = self._random.random()
        if roll < s.rate_429:
            return 429, s.retry_after_seconds, None
        if roll < s.rate_429 + s.rate_503:
            return 503, s.retry_after_seconds, None
        if roll < s.rate_429 + s.rate_503 + s.rate_timeout:
            return 0, None, None
        return None
