"""The queue as the webhook, the worker and the poison drain rely on it: the same cases against the
unit tests' FakeQueue and against StorageQueues on Azurite (what is visible now, what is held back, what
a receive gets and leases)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devtools.localstack.processes import AzuritePorts
from shared.config.settings import Secret, Settings
from shared.events.model import CanonicalEvent
from shared.events.queue import QueuedEvent
from shared.storage.queues import QueueReceiver, QueueSender, StorageQueues
from tests.fakes import FakeQueue


@dataclass
class Probe:
    sender: QueueSender
    visible: Callable[[str], list[str]]  # messages a consumer would receive now
    held: Callable[[str], int]  # messages sent but not yet visible


@pytest.fixture(params=["fake", "azurite"])
def queue(request: pytest.FixtureRequest) -> Probe:
    if request.param == "fake":
        fake = FakeQueue()
        return Probe(fake, lambda q: list(fake.sent[q]), lambda q: len(fake.delayed[q]))
    ports: AzuritePorts = request.getfixturevalue("azurite_ports")
    settings = Settings(
        sources={}, provider_registration_id="p", storage_connection_string=Secret(ports.connection_string())
    )

    def client(name: str) -> QueueClient:
        return QueueClient.from_connection_string(
            ports.connection_string(), name, message_decode_policy=TextBase64DecodePolicy()
        )

    def visible(name: str) -> list[str]:
        with client(name) as c:
            return [m.content for m in c.peek_messages(max_messages=32)]

    def held(name: str) -> int:
        with client(name) as c:
            return int(c.get_queue_properties().approximate_message_count or 0) - len(visible(name))

    return Probe(StorageQueues(settings), visible, held)


def test_sent_messages_are_visible_in_order_of_sending(queue: Probe) -> None:
    name = f"contract-{uuid.uuid4().hex[:12]}"
    queue.sender.send_all(name, ["one", "two", "three"])
    assert sorted(queue.visible(name)) == ["one", "three", "two"]
    assert queue.held(name) == 0


def test_a_message_sent_later_is_held_back(queue: Probe) -> None:
    name = f"contract-{uuid.uuid4().hex[:12]}"
    queue.sender.send_all(name, ["now"])
    queue.sender.send_later(name, "later", 120)
    assert queue.visible(name) == ["now"]
    assert queue.held(name) == 1


def test_a_short_delay_comes_due(azurite_ports: AzuritePorts) -> None:
    settings = Settings(
        sources={},
        provider_registration_id="p",
        storage_connection_string=Secret(azurite_ports.connection_string()),
    )
    name = f"contract-{uuid.uuid4().hex[:12]}"
    sender = StorageQueues(settings)
    sender.send_all(name, ["first"])  # creates the queue
    sender.send_later(name, "later", 1)
    deadline = time.monotonic() + 10
    with QueueClient.from_connection_string(
        azurite_ports.connection_string(), name, message_decode_policy=TextBase64DecodePolicy()
    ) as client:
        while time.monotonic() < deadline:
            if "later" in [m.content for m in client.peek_messages(max_messages=32)]:
                return
            time.sleep(0.2)
    raise AssertionError("the delayed message never became visible")


def test_messages_the_bridge_sends_never_expire_where_the_default_is_seven_days(
    azurite_ports: AzuritePorts,
) -> None:
    """The webhook's, a deferral's, a replay's and a parked event's messages all go through send_all or
    send_later: none may expire while it waits (an unconfigured app, a listener that cannot start)."""
    settings = Settings(
        sources={},
        provider_registration_id="p",
        storage_connection_string=Secret(azurite_ports.connection_string()),
    )
    name = f"contract-{uuid.uuid4().hex[:12]}"
    sender = StorageQueues(settings)
    sender.send_all(name, ["now", "also-now"])
    sender.send_later(name, "later", 1)
    with QueueClient.from_connection_string(
        azurite_ports.connection_string(), name, message_decode_policy=TextBase64DecodePolicy()
    ) as client:
        client.send_message("c2VudCB3aXRob3V0IGEgVFRM")  # the service's default, for comparison
        time.sleep(1.2)  # `later` comes due
        received = {m.content: m for m in client.receive_messages(max_messages=32)}
    assert set(received) == {"now", "also-now", "later", "sent without a TTL"}
    for content in ("now", "also-now", "later"):
        expires = received[content].expires_on
        assert expires is not None, content
        assert expires.year == 9999, (content, expires)  # `messagettl=-1`
    default = received["sent without a TTL"]
    assert default.expires_on is not None
    assert default.inserted_on is not None
    assert (default.expires_on - default.inserted_on).days == 7


@dataclass
class PoisonProbe:
    receiver: QueueReceiver
    put_raw: Callable[[str, str], None]  # a message stored as this exact text


@pytest.fixture(params=["fake", "azurite"])
def poison(request: pytest.FixtureRequest) -> PoisonProbe:
    if request.param == "fake":
        fake = FakeQueue()
        return PoisonProbe(fake, fake.put_raw)
    ports: AzuritePorts = request.getfixturevalue("azurite_ports")
    settings = Settings(
        sources={}, provider_registration_id="p", storage_connection_string=Secret(ports.connection_string())
    )

    def put_raw(name: str, content: str) -> None:
        with QueueClient.from_connection_string(ports.connection_string(), name) as client:
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            client.send_message(content)

    return PoisonProbe(StorageQueues(settings), put_raw)


def test_received_messages_are_their_stored_text_undecoded_and_leased(poison: PoisonProbe) -> None:
    name = f"contract-{uuid.uuid4().hex[:12]}-poison"
    poison.put_raw(name, "eyJhIjogMX0=")  # base64, as the host copies a message that failed
    poison.put_raw(name, '{"a": 1}')  # raw, as it copies one it could not decode
    first = poison.receiver.receive(name, 32, 60)
    assert sorted(m.content for m in first) == sorted(['{"a": 1}', "eyJhIjogMX0="])
    assert [m.dequeue_count for m in first] == [1, 1]
    assert poison.receiver.receive(name, 32, 60) == []  # leased: invisible to the next receive
    for message in first:
        poison.receiver.delete(name, message)
    poison.receiver.delete(name, first[0])  # deleting again is nothing


def test_receiving_from_a_queue_that_does_not_exist_is_nothing(poison: PoisonProbe) -> None:
    assert poison.receiver.receive(f"contract-{uuid.uuid4().hex[:12]}-absent", 32, 60) == []


async def test_the_drain_empties_a_poison_queue_holding_what_the_host_puts_there(
    azurite_ports: AzuritePorts,
) -> None:
    """On Azurite with the queue SDK: the host's base64 copy of a failed event and its raw copy of a
    message that was not base64 both become dead letters, and the queue is empty after."""
    from shared.delivery import CourseActivityUpserter, EventWorker
    from shared.delivery.deadletters import DeadLetters
    from shared.delivery.deadline import Deadline
    from shared.delivery.poison import PoisonDrain
    from tests.builders import event
    from tests.fakes import FakeGraph, MemoryStateStore

    settings = Settings(
        sources={},
        provider_registration_id="p",
        storage_connection_string=Secret(azurite_ports.connection_string()),
    )
    name = f"contract-{uuid.uuid4().hex[:12]}-poison"
    body = QueuedEvent(
        event=CanonicalEvent.model_validate(event(source="generic", eventId="poisoned")),
        received_at=datetime(2026, 11, 26, tzinfo=UTC),
    ).model_dump_json(by_alias=True, exclude_none=True)
    connection = azurite_ports.connection_string()
    with QueueClient.from_connection_string(
        connection, name, message_encode_policy=TextBase64EncodePolicy()
    ) as encoding:
        encoding.create_queue()
        encoding.send_message(body)
    with QueueClient.from_connection_string(connection, name) as raw:
        raw.send_message("<not base64>")
    queues, state = StorageQueues(settings), MemoryStateStore()
    worker = EventWorker(CourseActivityUpserter(FakeGraph(), state), DeadLetters(state, queues), queues)
    report = await PoisonDrain(worker, queues, name).run(Deadline(60))
    assert (report.recorded, report.stopped) == (2, None)
    assert {(letter.reason, letter.message) for letter in state.letters.values()} == {
        ("poison", body),
        ("invalidMessage", "<not base64>"),
    }
    with QueueClient.from_connection_string(connection, name) as raw:
        assert raw.get_queue_properties().approximate_message_count == 0
