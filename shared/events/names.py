"""Names the app and its bindings share: the source-name alphabet, the queues, their connection setting
and the retry schedule.

Kept apart from the models (and free of imports) because function_app needs them at import time, to
register its bindings, and must not pay for pydantic there.
"""

#: Source names appear in URLs and app-setting names, so they are kept to a safe alphabet.
SOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"

#: The app-setting (prefix) the queue bindings use: a connection string or identity-based settings.
STORAGE_CONNECTION = "BRIDGE_STORAGE"
#: Accepted events, one message per event, consumed by the Graph upsert.
EVENTS_QUEUE = "learning-events"
#: Where the Functions host moves a message after maxDequeueCount failed attempts.
POISON_QUEUE = f"{EVENTS_QUEUE}-poison"
#: host.json `extensions.queues.maxDequeueCount` (a test holds the two together). The Storage Queues
#: extension moves a failed message to the poison queue once its dequeue count reaches it, and one whose
#: count is already above it (a crash, a timeout, a worker restart) without running the function
#: (Azure/azure-sdk-for-net, Microsoft.Azure.WebJobs.Extensions.Storage.Queues, QueueProcessor.cs:
#: `CompleteProcessingMessageAsync`, `BeginProcessingMessageAsync`). The attempt with this count is the
#: last one the function sees: apply_event records the dead letter itself there (shared.delivery.worker).
MAX_DEQUEUE_COUNT = 5
#: When parked events are retried (NCRONTAB, with seconds): every five minutes.
RETRY_SCHEDULE = "0 */5 * * * *"
#: When the poison queue is drained into dead letters: every five minutes, half a minute after the
#: retry of parked events. The host's poison copies live seven days (their default time-to-live).
POISON_DRAIN_SCHEDULE = "30 */5 * * * *"
