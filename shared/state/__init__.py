"""What the bridge remembers between messages, in Azure Table storage (Azurite locally):

- deliveries: every event seen, by source and eventId, so a redelivery changes nothing;
- activities: per course activity, its Graph id and the state last written, guarded by the row's
  ETag so concurrent workers never both create it;
- activity events: the events behind each activity, so the merge is by event time and a voided
  statement withdraws exactly its own effect;
- dead letters: events that could not be applied, parked (to retry) or dead-lettered, with the reason
  and the original message, for operators to see and replay.
"""

from shared.state.models import (
    ActivityState,
    DeadLetterRecord,
    DeliveryRecord,
    EventEntry,
    LetterState,
)
from shared.state.store import Conflict, StateStore

__all__ = [
    "ActivityState",
    "Conflict",
    "DeadLetterRecord",
    "DeliveryRecord",
    "EventEntry",
    "LetterState",
    "StateStore",
]
