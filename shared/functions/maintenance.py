"""The daily timers: the reconcile, report-only (what drifted in Graph, as a metric and one log line
of counts), and retention (what the state store no longer needs, removed, with its counts logged).

Repairs are an operator's decision (`python -m shared.cli reconcile --repair`): a record edited in
Viva Learning may have been edited on purpose.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by function_app at start-up: the timers' modules come with their first run
    from shared.runtime import Bridge

log = logging.getLogger(__name__)

#: Daily at 03:30 UTC (NCRONTAB, seconds first): a quiet hour for most tenants.
RECONCILE_SCHEDULE = "0 30 3 * * *"
#: Daily at 04:15 UTC, after the reconcile.
RETENTION_SCHEDULE = "0 15 4 * * *"
#: Graph reads a second: the queue side keeps most of Graph's throttling budget.
RECONCILE_RATE = 5.0


async def reconcile_report(bridge: Bridge) -> dict[str, int]:
    """Read every record back and compare; nothing is written (no upserter call happens without
    `repair`). Records Graph kept throttling past their attempts are counted as `unread` in the same
    log line: the report is never lost to one record."""
    from shared.delivery.upsert import CourseActivityUpserter
    from shared.graph.msgraph_gateway import build_learning_graph
    from shared.operations.batching import Pacer
    from shared.operations.maintenance import MaintainedStore
    from shared.operations.reconcile import reconcile, rows_to_check
    from shared.telemetry import record_drift

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


async def retention(bridge: Bridge) -> dict[str, int]:
    """Remove what is past `BRIDGE_RETENTION_DAYS`; the counts (no identities) go to the log."""
    from datetime import UTC, datetime

    from shared.operations.retention import RetainedStore, apply_retention

    store = bridge.state()
    if not isinstance(store, RetainedStore):  # pragma: no cover - the app's store always is
        raise TypeError("the state store cannot apply retention")
    report = await apply_retention(store, datetime.now(UTC), bridge.settings.retention_days)
    counts = report.counts()
    log.info(
        "retention (%d days): %s",
        bridge.settings.retention_days,
        " ".join(f"{k}={v}" for k, v in counts.items()),
    )
    return counts
