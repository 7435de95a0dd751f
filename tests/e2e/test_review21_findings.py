"""Review of issue 21 ("Nothing lost when Azure runs it"): defects found against the real storage
rules (Azurite enforces them as Azure does). Each test fails on the code as reviewed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from azure.data.tables.aio import TableServiceClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from shared.config.settings import Secret, Settings
from shared.delivery import CourseActivityUpserter, EventWorker
from shared.delivery.deadletters import DeadLetters
from shared.delivery.deadline import Deadline
from shared.delivery.poison import PoisonDrain
from shared.events.model import CanonicalEvent
from shared.events.queue import QueuedEvent
from shared.state.store import TableStateStore
from shared.storage.queues import StorageQueues
from tests.builders import event
from tests.e2e.stack import Stack
from tests.fakes import FakeGraph

#: Azure Table storage: a String property holds at most 64 KiB, i.e. 32 K UTF-16 characters
#: (learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model,
#: "Property types"); Azurite refuses more with "The property value exceeds the maximum allowed size
#: (64KB)". A queue message holds 64 KiB, so a message of 33,000 ASCII characters fits the queue and
#: not a String property.
LONGER_THAN_A_TABLE_STRING = 33_000


def test_the_poison_drain_records_every_message_even_one_longer_than_a_table_string(stack: Stack) -> None:
    """The README promises "Nothing stays only in a poison queue": the drain turns every message on
    `learning-events-poison` into a dead letter (`invalidMessage` for what is not a queued event, "the
    message kept verbatim"). But `TableStateStore.save_dead_letter` stores the message as one String
    property, which Table storage caps at 32 K characters, while a queue message may hold 64 KiB. A
    message on `learning-events` longer than that (put there by hand or by another tool, the very case
    issue 21 names: "a message that is not base64 put on learning-events") can never be recorded:
    apply_event's invalidMessage letter fails on each of the five attempts (the last one too, so the
    host moves it to the poison queue), and the drain's write fails on every run, so it stays on the
    poison queue until the host copy's seven-day TTL and then vanishes with no dead letter.

    Worse, PoisonDrain stops a run after STOP_AFTER_FAILURES (3) failures in a row as if the state
    store were down: three such messages at the head of the poison queue stop every run before it
    reaches anything behind them, so the poison copies of accepted events behind them expire too,
    unrecorded (here: the event `behind-oversized`; the run also leased it with its page, and every
    later run meets the same three first)."""
    name = f"r21-{uuid.uuid4().hex[:12]}-poison"
    connection = stack.ports.connection_string()
    settings = Settings(
        sources={}, provider_registration_id="p", storage_connection_string=Secret(connection)
    )
    oversized = [f"{i}:" + "x" * LONGER_THAN_A_TABLE_STRING for i in range(3)]
    accepted = QueuedEvent(
        event=CanonicalEvent.model_validate(event(source="generic", eventId="behind-oversized")),
        received_at=datetime(2026, 12, 6, tzinfo=UTC),
    ).model_dump_json(by_alias=True, exclude_none=True)
    with QueueClient.from_connection_string(connection, name) as raw:
        raw.create_queue()
        for text in oversized:  # the host's raw copy of a message it could not decode
            raw.send_message(text)
    with QueueClient.from_connection_string(
        connection, name, message_encode_policy=TextBase64EncodePolicy()
    ) as encoding:
        encoding.send_message(accepted)  # the host's base64 copy of an accepted event that failed

    async def drain_once() -> tuple[list[tuple[str, str]], int]:
        state = TableStateStore(TableServiceClient.from_connection_string(connection))
        try:
            queues = StorageQueues(settings)
            worker = EventWorker(
                CourseActivityUpserter(FakeGraph(), state), DeadLetters(state, queues), queues
            )
            drain = PoisonDrain(worker, queues, name)
            await drain.run(Deadline(30))
            letters = [
                (letter.source, letter.event_id)
                async for letter in state.dead_letters(brief=True)
                if letter.source == "generic" and letter.event_id == "behind-oversized"
            ]
            return letters, queues.backlog(name)
        finally:
            await state.close()

    letters, left = asyncio.run(drain_once())
    assert letters == [("generic", "behind-oversized")], (
        "the accepted event's poison copy got no dead letter: the drain stopped at the oversized "
        "messages before it"
    )
    assert left == 0, f"{left} message(s) left on the poison queue, where they expire unrecorded"
