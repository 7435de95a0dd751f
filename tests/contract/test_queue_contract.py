"""The queue as the webhook and the worker rely on it: the same cases against the unit tests'
FakeQueue and against StorageQueues on Azurite (what is visible now, what is held back)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from devtools.localstack.processes import AzuritePorts
from shared.config.settings import Secret, Settings
from shared.storage.queues import QueueSender, StorageQueues
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
