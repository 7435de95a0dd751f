"""The queue side: apply one canonical event to Graph, or say why it cannot be applied.

Public surface: `EventWorker` (one queue message in, one outcome out), `CourseActivityUpserter`,
the merge rules in `merge`, and the failure types in `exceptions`.
"""

from shared.delivery.exceptions import DeliveryFailure, PermanentFailure, TransientFailure
from shared.delivery.upsert import CourseActivityUpserter, UpsertResult
from shared.delivery.worker import EventWorker

__all__ = [
    "CourseActivityUpserter",
    "DeliveryFailure",
    "EventWorker",
    "PermanentFailure",
    "TransientFailure",
    "UpsertResult",
]
