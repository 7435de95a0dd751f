"""What the commands run against: the configured state store, queues and Graph, and the waits.

One module that every command asks, at the moment it needs them, so that the tests can put the
project's fakes (tests/fakes.py) behind every command at once and drive `main(argv)` in process:
tests/unit/test_cli_totality.py feeds every command arbitrary files and arguments that way. The waits
are here for the same reason: a command paced to 0.01 requests a second must not make a test sleep.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config.settings import Settings
    from shared.graph.gateway import LearningGraph
    from shared.state.store import TableStateStore
    from shared.storage.queues import StorageQueues

#: How a command waits: the import's pacing (blocking) and Graph's Retry-After and pacing (async).
sleep = time.sleep
async_sleep = asyncio.sleep


def state_store(settings: Settings) -> TableStateStore:
    from shared.state.store import TableStateStore
    from shared.state.tables import table_service_client

    return TableStateStore(table_service_client(settings))


def queues(settings: Settings) -> StorageQueues:
    from shared.storage.queues import StorageQueues

    return StorageQueues(settings)


def graph(settings: Settings) -> LearningGraph:
    from shared.graph.msgraph_gateway import build_learning_graph

    return build_learning_graph(settings)
