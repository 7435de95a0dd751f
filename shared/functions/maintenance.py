"""The daily reconcile, report-only: what drifted in Graph, as a metric and one log line of counts.

Repairs are an operator's decision (`python -m shared.cli reconcile --repair`): a record edited in
Viva Learning may have been edited on purpose.
"""

from __future__ import annotations

import logging

from shared.delivery.upsert import CourseActivityUpserter
from shared.operations.batching import Pacer
from shared.operations.maintenance import MaintainedStore
from shared.operations.reconcile import reconcile, rows_to_check
from shared.runtime import Bridge
from shared.telemetry import record_drift

log = logging.getLogger(__name__)

#: Daily at 03:30 UTC (NCRONTAB, seconds first): a quiet hour for most tenants.
RECONCILE_SCHEDULE = "0 30 3 * * *"
#: Graph reads a second: the queue side keeps most of Graph's throttling budget.
RECONCILE_RATE = 5.0


async def reconcile_report(bridge: Bridge) -> dict[str, int]:
    """Read every record back and compare; nothing is written (no upserter call happens without
    `repair`)."""
    from shared.graph.msgraph_gateway import build_learning_graph

    store = bridge.state()
    if not isinstance(store, MaintainedStore):  # pragma: no cover - the app's store always is
        raise TypeError("the state store cannot list activities")
    graph = build_learning_graph(bridge.settings)
    rows = await rows_to_check(store, None)
    report = await reconcile(
        store, graph, CourseActivityUpserter(graph, store), rows, repair=False, pacer=Pacer(RECONCILE_RATE)
    )
    counts = report.counts()
    record_drift(counts)
    log.info("reconcile (report only): %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts
