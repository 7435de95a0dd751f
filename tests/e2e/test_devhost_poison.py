"""The dev host's queue rules against Azurite (the real queue service): poisoning as the Functions host
does it (QueueProcessor, QueueListenerFactory, QueueServiceClientProvider in Azure/azure-sdk-for-net)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from devtools.devhost.host import FunctionSpec, QueueListener, QueueOptions
from tests.e2e.stack import Stack

BODY = b'{"hello": "poison"}'


@asynccontextmanager
async def listening(
    stack: Stack, queue_name: str, function: Callable[[Any], Awaitable[None]], **options: Any
) -> AsyncIterator[QueueClient]:
    """A listener on `queue_name` (created here: the host's listener creates no queue) for the block."""
    spec = FunctionSpec(
        "fn", function, [{"type": "queueTrigger", "name": "message", "queueName": queue_name}]
    )
    settings = {"visibility_timeout": 0, "max_polling_interval": 0.2, **options}
    listener = QueueListener(spec, stack.ports.connection_string(), QueueOptions(**settings))
    with QueueClient.from_connection_string(stack.ports.connection_string(), queue_name) as client:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        stop = asyncio.Event()
        task = asyncio.create_task(listener.run(stop))
        try:
            yield client
        finally:
            stop.set()
            await task
            await listener.close()


async def poisoned(stack: Stack, queue_name: str, timeout: float = 10) -> list[Any]:
    """The messages on the poison queue, received (so their dequeue count shows), once there are any."""
    with QueueClient.from_connection_string(stack.ports.connection_string(), queue_name) as poison:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                received = list(poison.receive_messages(max_messages=5, visibility_timeout=1))
            except ResourceNotFoundError:
                received = []
            if received:
                return received
            await asyncio.sleep(0.1)
    return []


def _name() -> str:
    return f"devhost-{uuid.uuid4().hex[:12]}"


async def test_a_message_failing_max_dequeue_count_times_lands_in_the_poison_queue_as_a_new_message(
    stack: Stack,
) -> None:
    """Rules 1 and 4: after maxDequeueCount failed attempts the body is copied to `<queue>-poison` as a
    new message (AddMessageAndCreateIfNotExistsAsync): its dequeue count starts again at 1."""
    queue_name = _name()
    attempts: list[int] = []

    async def always_fails(message: Any) -> None:
        attempts.append(message.dequeue_count)
        raise RuntimeError("transient")

    async with listening(stack, queue_name, always_fails, max_dequeue_count=2) as client:
        client.send_message(base64.b64encode(BODY).decode())
        copies = await poisoned(stack, f"{queue_name}-poison")
    assert attempts == [1, 2]
    assert [base64.b64decode(m.content) for m in copies] == [BODY]
    assert [m.dequeue_count for m in copies] == [1]


async def test_a_message_that_is_not_base64_goes_to_the_poison_queue_without_running(stack: Stack) -> None:
    """Rule 3, against the real queue service: plain text (as the Python SDK sends without
    TextBase64EncodePolicy) is poisoned on its first delivery, the function never called."""
    queue_name = _name()
    runs: list[Any] = []

    async def function(message: Any) -> None:
        runs.append(message)

    async with listening(stack, queue_name, function, max_dequeue_count=5) as client:
        client.send_message('{"plain": "text"}')
        copies = await poisoned(stack, f"{queue_name}-poison")
    assert runs == []
    assert [m.content for m in copies] == ['{"plain": "text"}']


async def test_a_failing_message_on_a_poison_queue_stays_there_and_is_never_moved(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 1: `<queue>-poison` has no poison queue. A failure is not released (the message comes back
    only when its receive lease ends) and, past maxDequeueCount, the function is no longer run; nothing
    is ever moved to `<queue>-poison-poison` (where the old dev host put it)."""
    monkeypatch.setenv("DEVHOST_MESSAGE_LEASE_SECONDS", "1")
    queue_name = f"{_name()}-poison"
    attempts: list[tuple[int, float]] = []

    async def always_fails(message: Any) -> None:
        attempts.append((message.dequeue_count, time.monotonic()))
        raise RuntimeError("the dead-letter store is down")

    async with listening(stack, queue_name, always_fails, max_dequeue_count=2) as client:
        client.send_message(base64.b64encode(BODY).decode())
        await asyncio.sleep(4.5)  # about four leases: two attempts, then received but never run
        remaining = client.peek_messages(max_messages=5)
    assert [count for count, _ in attempts] == [1, 2]
    assert attempts[1][1] - attempts[0][1] >= 0.9  # came back after its lease, not released at once
    with (
        QueueClient.from_connection_string(stack.ports.connection_string(), f"{queue_name}-poison") as poison,
        pytest.raises(ResourceNotFoundError),
    ):
        poison.get_queue_properties()
    assert len(remaining) <= 1  # invisible or visible, the message is still on its queue
    with QueueClient.from_connection_string(stack.ports.connection_string(), queue_name) as again:
        assert again.get_queue_properties().approximate_message_count == 1


async def test_a_message_received_past_max_dequeue_count_is_poisoned_without_running(stack: Stack) -> None:
    """Rule 2: a message whose earlier attempts died without settling it (here: received and abandoned
    three times, as a crashed dev host would) is poisoned as soon as it is received again."""
    queue_name = _name()
    with QueueClient.from_connection_string(stack.ports.connection_string(), queue_name) as client:
        client.create_queue()
        client.send_message(base64.b64encode(BODY).decode())
        for _ in range(3):  # three deliveries that crashed: the message comes back after 1 s each
            assert list(client.receive_messages(max_messages=1, visibility_timeout=1))
            await asyncio.sleep(1.1)
    runs: list[Any] = []

    async def function(message: Any) -> None:
        runs.append(message)

    async with listening(stack, queue_name, function, max_dequeue_count=2):
        copies = await poisoned(stack, f"{queue_name}-poison")
    assert runs == []
    assert [base64.b64decode(m.content) for m in copies] == [BODY]
