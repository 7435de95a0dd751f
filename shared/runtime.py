"""Everything the functions need, built once per worker process from the app settings (by the first
invocation: function_app only checks the settings at import, see shared.functions.bridge).

What nothing works without (storage, the provider registration id) never reaches here unusable:
shared.functions.bridge keeps that problem and every function reports it instead. A source that
cannot be used (missing or unresolved secret, invalid options) is set aside: the other sources and the
queue side work, that source answers 503 `source-not-configured`, and the log (once, when the Bridge
is built) and `GET /api/health` say why.
The queue side (the state tables, the upserter and the Graph client) is built, and its modules
imported, on first use only: importing msgraph costs about a second, and none of it serves a webhook,
so a webhook's cold start must not pay for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.config.settings import SOURCES as SOURCES_SETTING
from shared.config.settings import Settings, load_settings
from shared.ingest import problems
from shared.ingest.handler import WebhookIngestor, WebhookRequest, WebhookResponse
from shared.ingest.problems import PROBLEM_MEDIA_TYPE
from shared.sources.registry import UnavailableSource, build_isolated_sources
from shared.storage.queues import QueueReceiver, QueueSender, StorageQueues
from shared.telemetry import Outcome, record_event

if TYPE_CHECKING:
    from shared.delivery.deadletters import DeadLetters
    from shared.delivery.poison import PoisonDrain
    from shared.delivery.worker import EventWorker
    from shared.state.store import StateStore

log = logging.getLogger(__name__)


class Bridge:
    def __init__(self, settings: Settings, queues: QueueSender | None = None) -> None:
        self.settings = settings
        catalog = build_isolated_sources(settings.sources, settings.source_problems)
        self.sources = catalog.available
        self.unavailable = catalog.unavailable
        self.queues = queues or StorageQueues(settings)
        self.ingestor = IsolatingIngestor(
            WebhookIngestor(
                self.sources,
                self.queues,
                settings.max_body_bytes,
                assignments_enabled=settings.assignments_enabled,
            ),
            self.unavailable,
            settings.sources_problem,
        )
        self._log_degraded()
        self._worker: EventWorker | None = None
        self._state: StateStore | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Bridge:
        return cls(load_settings(os.environ if env is None else env))

    def worker(self) -> EventWorker:
        if self._worker is None:
            from shared.delivery.resolve import Resolver
            from shared.delivery.upsert import CourseActivityUpserter
            from shared.delivery.worker import EventWorker
            from shared.graph.msgraph_gateway import build_learning_graph
            from shared.sources.base import progress_keys

            graph = build_learning_graph(self.settings)
            # Events a source queued before it was set aside still need its options (learner lookup):
            # the queue side reads the options of every source that has valid ones.
            options = {name: source.options for name, source in self.sources.items()}
            options.update(
                (name, aside.options) for name, aside in self.unavailable.items() if aside.options is not None
            )
            attributes = {name: o.account_attribute for name, o in options.items() if o.account_attribute}
            upserter = CourseActivityUpserter(
                graph,
                self.state(),
                Resolver(graph, attributes),
                shared_id_sources=[name for name, o in options.items() if o.shared_activity_ids],
                claim_lease=timedelta(seconds=self.settings.claim_lease_seconds),
                content_languages={n: o.content_language for n, o in options.items() if o.register_content},
                voiding_sources=self._voiding_sources(),
                progress_keys=progress_keys(options),
                write_retention=timedelta(days=self.settings.retention_days),
            )
            self._worker = EventWorker(
                upserter,
                self.dead_letters(),
                self.queues,
                assignments_enabled=self.settings.assignments_enabled,
            )
        return self._worker

    def _voiding_sources(self) -> list[str]:
        """Sources whose format can void (or is unknown: then the safe path)."""
        from shared.sources.registry import format_class

        voiding = []
        for name, source in self.settings.sources.items():
            kind = format_class(source.format)
            if kind is None or kind.can_void:
                voiding.append(name)
        return voiding

    def state(self) -> StateStore:
        if self._state is None:
            from shared.state.store import TableStateStore
            from shared.state.tables import table_service_client

            self._state = TableStateStore(table_service_client(self.settings))
        return self._state

    def dead_letters(self) -> DeadLetters:
        from shared.delivery.deadletters import DeadLetters

        timeout = timedelta(hours=self.settings.park_timeout_hours)
        return DeadLetters(self.state(), self.queues, timeout)

    def poison_drain(self) -> PoisonDrain:
        from shared.delivery.poison import PoisonDrain

        receiver = self.queues if isinstance(self.queues, QueueReceiver) else StorageQueues(self.settings)
        return PoisonDrain(self.worker(), receiver)

    def health(self) -> dict[str, Any]:
        """What GET /api/health answers: `ok`, or `degraded` with each set-aside source and why."""
        degraded = {
            name: {"setting": source.setting, "reason": source.reason}
            for name, source in sorted(self.unavailable.items())
        }
        report: dict[str, Any] = {
            "status": "degraded" if degraded or self.settings.sources_problem else "ok",
            "sources": {"available": sorted(self.sources), "degraded": degraded},
        }
        if self.settings.sources_problem:
            report["problems"] = [self.settings.sources_problem]
        return report

    def _log_degraded(self) -> None:
        """Once per worker, at start-up: which sources are set aside and why (names, never values)."""
        if self.settings.sources_problem:
            log.error("no source can take deliveries: %s", self.settings.sources_problem)
        for name, source in sorted(self.unavailable.items()):
            log.error(
                "source set aside, it answers 503 until fixed: source=%s reason=%s", name, source.reason
            )
        if self.unavailable or self.settings.sources_problem:
            available = ", ".join(sorted(self.sources)) or "none"
            log.warning("the bridge runs degraded: sources taking deliveries: %s", available)


class IsolatingIngestor:
    """The webhook, with set-aside sources answered 503 `source-not-configured` before anything else.

    The 503 (with Retry-After) tells platforms to retry rather than switch the webhook off, and names
    the setting to fix, never its value.
    """

    def __init__(
        self,
        ingestor: WebhookIngestor,
        unavailable: Mapping[str, UnavailableSource],
        sources_problem: str | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._unavailable = unavailable
        self._sources_problem = sources_problem

    def handle(self, request: WebhookRequest) -> WebhookResponse:
        source = self._unavailable.get(request.source)
        if source is not None and request.endpoint in source.endpoints:
            return self._refuse(request.source, source.setting)
        if source is None and self._sources_problem is not None:
            return self._refuse("unknown", SOURCES_SETTING)
        return self._ingestor.handle(request)

    def _refuse(self, metric_source: str, setting: str) -> WebhookResponse:
        problem = problems.source_not_configured(setting)
        record_event(metric_source, Outcome.RECEIVED)
        record_event(metric_source, Outcome.REJECTED, reason=problem.slug)
        log.warning("webhook refused: source=%s status=503 type=%s", metric_source, problem.slug)
        return WebhookResponse(problem.status, problem.to_json(), PROBLEM_MEDIA_TYPE, dict(problem.headers))
