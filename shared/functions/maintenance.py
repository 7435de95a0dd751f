"""The daily maintenance: the reconcile, report-only (what drifted in Graph, as a metric and one log
line of counts), and retention (what the state store no longer needs, removed, with its counts logged).

Each is a daily pass that may outgrow one invocation (the host's functionTimeout would cut it short and
restart the worker): its timer runs every few minutes, does nothing unless a pass is due or unfinished
(shared.operations.jobs), and works within the maintenance time budget, leaving a checkpoint for the
next run. A pass's counts are logged once, when it finishes.

Repairs are an operator's decision (`python -m shared.cli reconcile --repair`): a record edited in
Viva Learning may have been edited on purpose.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by function_app at start-up: the timers' modules come with their first run
    from shared.runtime import Bridge

log = logging.getLogger(__name__)

#: The reconcile's pass is due daily at 03:30 UTC, a quiet hour for most tenants; its timer looks every
#: 5 minutes (NCRONTAB, seconds first: at 15 s past, apart from the other timers) and goes on with a
#: pass cut short by the time budget (at 5 reads a second, about 600 records a run).
RECONCILE_DAILY = (3, 30)
RECONCILE_SCHEDULE = "15 */5 * * * *"
#: Records compared between two looks at the time budget (at 5 reads a second: about 10 s a page).
RECONCILE_PAGE = 50
#: Retention's pass is due daily at 04:15 UTC, after the reconcile's; its timer looks every 5 minutes
#: (at 45 s past, apart from the other timers) and goes on with a pass cut short by the time budget.
RETENTION_DAILY = (4, 15)
RETENTION_SCHEDULE = "45 */5 * * * *"
#: Graph reads a second: the queue side keeps most of Graph's throttling budget.
RECONCILE_RATE = 5.0


async def reconcile_report(bridge: Bridge) -> dict[str, int]:
    """Go on with the reconcile pass that is due: read records back and compare, a page at a time in
    the order of their activity ids, from the checkpoint's cursor, until the time budget; nothing is
    written (no upserter call happens without `repair`). Records Graph kept throttling past their
    attempts are counted as `unread`: the report is never lost to one record. The counts go to the log
    and the drift metric once, when the pass ends."""
    from datetime import UTC, datetime

    from shared.delivery.deadline import Deadline
    from shared.delivery.upsert import CourseActivityUpserter
    from shared.graph.msgraph_gateway import build_learning_graph
    from shared.operations.batching import Pacer
    from shared.operations.jobs import DailyAt, JobStore, due_pass, record_run
    from shared.operations.maintenance import MaintainedStore
    from shared.operations.reconcile import reconcile, rows_to_check
    from shared.telemetry import record_drift

    store = bridge.state()
    if not (isinstance(store, MaintainedStore) and isinstance(store, JobStore)):  # pragma: no cover
        raise TypeError("the state store cannot list activities")
    checkpoint = await due_pass(store, "reconcile", DailyAt(*RECONCILE_DAILY), datetime.now(UTC))
    if checkpoint is None:
        return {}
    deadline, graph = Deadline.maintenance(), build_learning_graph(bridge.settings)
    upserter, pacer = CourseActivityUpserter(graph, store), Pacer(RECONCILE_RATE)
    rows = sorted(await rows_to_check(store, None), key=lambda row: row.activity_id)
    rows = [row for row in rows if checkpoint.cursor is None or row.activity_id > checkpoint.cursor]
    counts, cursor = dict(checkpoint.counts), checkpoint.cursor
    while rows and not deadline.expired():
        page, rows = rows[:RECONCILE_PAGE], rows[RECONCILE_PAGE:]
        report = await reconcile(store, graph, upserter, page, repair=False, pacer=pacer, deadline=deadline)
        counts = {k: counts.get(k, 0) + v for k, v in report.counts().items()}
        cursor = page[-1].activity_id
    saved = await record_run(store, checkpoint, finished=not rows, cursor=cursor, counts=counts)
    if rows:
        log.info(
            "reconcile (report only): run %d stopped at its time budget; the next run goes on", saved.runs
        )
        return counts
    record_drift(counts)
    log.info(
        "reconcile (report only, %d run(s)): %s", saved.runs, " ".join(f"{k}={v}" for k, v in counts.items())
    )
    return counts


async def retention(bridge: Bridge) -> dict[str, int]:
    """Go on with the retention pass that is due (every run of a pass uses the cutoff of its scheduled
    time, so the pass is one whatever the number of runs); the counts (no identities) go to the log
    when it finishes, and are returned (empty when nothing was due)."""
    from datetime import UTC, datetime

    from shared.delivery.deadline import Deadline
    from shared.operations.jobs import DailyAt, JobStore, due_pass, record_run
    from shared.operations.retention import RetainedStore, apply_retention

    store = bridge.state()
    if not (isinstance(store, RetainedStore) and isinstance(store, JobStore)):  # pragma: no cover
        raise TypeError("the state store cannot apply retention")
    checkpoint = await due_pass(store, "retention", DailyAt(*RETENTION_DAILY), datetime.now(UTC))
    if checkpoint is None:
        return {}
    days, deadline = bridge.settings.retention_days, Deadline.maintenance()
    report = await apply_retention(
        store, checkpoint.occurrence, days, stop=deadline.expired, after=checkpoint.cursor
    )
    report.add(checkpoint.counts)
    saved = await record_run(
        store, checkpoint, finished=report.finished, cursor=report.resume_after, counts=report.counts()
    )
    counts = report.counts()
    if not report.finished:
        log.info(
            "retention (%d days): run %d stopped at its time budget; the next run goes on", days, saved.runs
        )
        return counts
    log.info(
        "retention (%d days, %d run(s)): %s",
        days,
        saved.runs,
        " ".join(f"{k}={v}" for k, v in counts.items()),
    )
    return counts
