"""Everything the functions need, built once per worker process from the app settings.

Building it validates the whole configuration, so a misconfigured app fails at start-up with one clear
message instead of failing the first request. The Graph side is built on first use only: importing
msgraph costs about a second, which the webhook's cold start must not pay.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from shared.config.settings import Settings, load_settings
from shared.delivery.deadletters import DeadLetters
from shared.delivery.resolve import Resolver
from shared.delivery.upsert import CourseActivityUpserter
from shared.delivery.worker import EventWorker
from shared.ingest.handler import WebhookIngestor
from shared.sources.registry import build_sources
from shared.state.store import StateStore, TableStateStore
from shared.state.tables import table_service_client
from shared.storage.queues import QueueSender, StorageQueues


class Bridge:
    def __init__(self, settings: Settings, queues: QueueSender | None = None) -> None:
        self.settings = settings
        self.sources = build_sources(settings.sources)
        self.queues = queues or StorageQueues(settings)
        self.ingestor = WebhookIngestor(self.sources, self.queues, settings.max_body_bytes)
        self._worker: EventWorker | None = None
        self._state: StateStore | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Bridge:
        return cls(load_settings(os.environ if env is None else env))

    def worker(self) -> EventWorker:
        if self._worker is None:
            from shared.graph.msgraph_gateway import build_learning_graph

            graph = build_learning_graph(self.settings)
            attributes = {
                name: source.options.account_attribute
                for name, source in self.sources.items()
                if source.options.account_attribute
            }
            shared_ids = [name for name, source in self.sources.items() if source.options.shared_activity_ids]
            upserter = CourseActivityUpserter(
                graph,
                self.state(),
                Resolver(graph, attributes),
                shared_id_sources=shared_ids,
                claim_lease=timedelta(seconds=self.settings.claim_lease_seconds),
            )
            self._worker = EventWorker(upserter, self.dead_letters(), self.queues)
        return self._worker

    def state(self) -> StateStore:
        if self._state is None:
            self._state = TableStateStore(table_service_client(self.settings))
        return self._state

    def dead_letters(self) -> DeadLetters:
        timeout = timedelta(hours=self.settings.park_timeout_hours)
        return DeadLetters(self.state(), self.queues, timeout)
