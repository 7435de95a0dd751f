"""The dev host moves a message that keeps failing to `<queue>-poison`, as the Functions host does."""

import asyncio
import base64
import uuid

from azure.storage.queue import QueueClient

from devtools.devhost.host import FunctionSpec, QueueListener, QueueOptions
from tests.e2e.stack import Stack


async def test_a_message_failing_max_dequeue_count_times_lands_in_the_poison_queue(stack: Stack) -> None:
    queue_name = f"devhost-{uuid.uuid4().hex[:12]}"
    attempts: list[int] = []

    async def always_fails(message) -> None:
        attempts.append(message.dequeue_count)
        raise RuntimeError("transient")

    spec = FunctionSpec(
        "always_fails", always_fails, [{"type": "queueTrigger", "name": "message", "queueName": queue_name}]
    )
    options = QueueOptions(max_dequeue_count=2, visibility_timeout=0, max_polling_interval=0.2)
    listener = QueueListener(spec, stack.ports.connection_string(), options)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    with QueueClient.from_connection_string(stack.ports.connection_string(), queue_name) as client:
        await asyncio.sleep(0.5)  # the listener creates the queues
        client.send_message(base64.b64encode(b'{"hello": "poison"}').decode())
    poison_name = f"{queue_name}-poison"
    with QueueClient.from_connection_string(stack.ports.connection_string(), poison_name) as poison:
        for _ in range(100):
            messages = poison.peek_messages(max_messages=5)
            if messages:
                break
            await asyncio.sleep(0.1)
    stop.set()
    await task
    await listener.close()
    assert attempts == [1, 2]
    assert [base64.b64decode(m.content) for m in messages] == [b'{"hello": "poison"}']
