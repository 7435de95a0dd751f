"""Azure Functions entry point (Python v2 model): registers the functions, nothing more.

All logic lives in the `shared` package. Importing this module never raises: an exception while the
worker indexes the app would leave the host running with no function at all. It reads and checks the
app settings; when an app-wide one is missing or invalid, every function says so instead (HTTP 503
naming the settings, /api/health 503 `unhealthy`, the queue function failing with the problem, timers
logging it; see shared.functions.bridge). The rest of the Bridge is built by the first invocation (a
cold start pays only for what it serves), where a source that cannot be used is set aside (503 for it,
reported by /api/health and the log) while everything else runs.

No function triggers on the poison queue (a `-poison` queue has no poison queue of its own, so the host
would let its failures cycle unseen): the `drain_poison` timer turns its messages into dead letters.
Queue and timer functions return None (the Python worker fails one without a `$return` binding that
returns anything else).
"""

import azure.functions as func

from shared.events.names import EVENTS_QUEUE, POISON_DRAIN_SCHEDULE, RETRY_SCHEDULE, STORAGE_CONNECTION
from shared.functions import http, maintenance, queue
from shared.functions.bridge import LazyBridge, run_timer

bridge = LazyBridge.from_environment()
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.function_name("webhook")
@app.route(route="webhooks/{source}/{token?}", methods=["POST"])
def webhook(req: func.HttpRequest) -> func.HttpResponse:
    return http.webhook(bridge, req)


@app.function_name("xapi_statements")
@app.route(route="xapi/{source}/statements", methods=["POST"])
def xapi_statements(req: func.HttpRequest) -> func.HttpResponse:
    return http.webhook(bridge, req, endpoint="xapi")


@app.function_name("health")
@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return http.health(bridge)


@app.function_name("apply_event")
@app.queue_trigger(arg_name="message", queue_name=EVENTS_QUEUE, connection=STORAGE_CONNECTION)
async def apply_event(message: func.QueueMessage) -> None:
    await queue.apply_event(bridge.get(), message)


@app.function_name("drain_poison")
@app.timer_trigger(arg_name="timer", schedule=POISON_DRAIN_SCHEDULE, run_on_startup=False)
async def drain_poison(timer: func.TimerRequest) -> None:
    await run_timer(bridge, "drain_poison", queue.drain_poison)


@app.function_name("retry_parked")
@app.timer_trigger(arg_name="timer", schedule=RETRY_SCHEDULE, run_on_startup=False)
async def retry_parked(timer: func.TimerRequest) -> None:
    await run_timer(bridge, "retry_parked", queue.retry_parked)


@app.function_name("reconcile_report")
@app.timer_trigger(arg_name="timer", schedule=maintenance.RECONCILE_SCHEDULE, run_on_startup=False)
async def reconcile_report(timer: func.TimerRequest) -> None:
    await run_timer(bridge, "reconcile_report", maintenance.reconcile_report)


@app.function_name("retention")
@app.timer_trigger(arg_name="timer", schedule=maintenance.RETENTION_SCHEDULE, run_on_startup=False)
async def retention(timer: func.TimerRequest) -> None:
    await run_timer(bridge, "retention", maintenance.retention)
