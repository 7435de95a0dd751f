"""Azure Functions entry point (Python v2 model): registers the functions, nothing more.

All logic lives in the `shared` package. Importing this module validates the app settings: a setting
nothing works without fails start-up with a message naming it. The rest of the Bridge is built by the
first invocation (a cold start pays only for what it serves; see shared.functions.bridge), where a
source that cannot be used is set aside (503 for it, reported by /api/health and the log) while
everything else runs.
"""

import azure.functions as func

from shared.events.names import EVENTS_QUEUE, POISON_DRAIN_SCHEDULE, RETRY_SCHEDULE, STORAGE_CONNECTION
from shared.functions import http, maintenance, queue
from shared.functions.bridge import LazyBridge

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
    await queue.drain_poison(bridge.get())


@app.function_name("retry_parked")
@app.timer_trigger(arg_name="timer", schedule=RETRY_SCHEDULE, run_on_startup=False)
async def retry_parked(timer: func.TimerRequest) -> None:
    await queue.retry_parked(bridge.get())


@app.function_name("reconcile_report")
@app.timer_trigger(arg_name="timer", schedule=maintenance.RECONCILE_SCHEDULE, run_on_startup=False)
async def reconcile_report(timer: func.TimerRequest) -> None:
    await maintenance.reconcile_report(bridge.get())


@app.function_name("retention")
@app.timer_trigger(arg_name="timer", schedule=maintenance.RETENTION_SCHEDULE, run_on_startup=False)
async def retention(timer: func.TimerRequest) -> None:
    await maintenance.retention(bridge.get())
