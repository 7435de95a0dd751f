"""Sending queue messages the way the Functions host reads them (base64 text, the host's default).

The webhook sends with the SDK rather than a queue output binding so that a storage outage becomes a
clear 503 with Retry-After (the sender retries) instead of a host-generated 500.

Every message the bridge sends never expires (`time_to_live=-1`). Without it the service gives each
message seven days ("Put Message", learn.microsoft.com/rest/api/storageservices/put-message: "For
version 2017-07-29 or later, the maximum time-to-live can be any positive number, as well as -1
indicating that the message does not expire. If this parameter is omitted, the default time-to-live is
7 days"; azure-storage-queue's `send_message` passes `time_to_live` as `messagettl`). An accepted event
must not vanish because nothing consumed it for a week: the queue function's listener failing to start,
an app left unconfigured, a long outage of Graph with deferrals in between. Releasing a failed message
(the host's `UpdateMessageAsync`) keeps its expiry; only the copy the host puts on the poison queue gets
the default seven days, which is why the poison queue is drained every five minutes
(shared.delivery.poison).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shared.config.settings import Settings
from shared.storage.proxies import trust_environment

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueServiceClient

_PARALLEL_SENDS = 8
#: `messagettl=-1`: the message does not expire (see the module docstring).
NEVER_EXPIRES = -1
#: The longest a message is held back (Azure allows 7 days; Graph's Retry-After is seconds to minutes).
MAX_DELAY_SECONDS = 3600


class QueueUnavailable(Exception):
    """The queue could not take the messages; the caller must not report them as accepted.

    `sent` holds the indexes of the messages that were queued before the failure (a queue has no
    transactions), so the answer can say exactly what happened."""

    def __init__(self, message: str, sent: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.sent = tuple(sorted(sent))


class QueueSender(Protocol):
    def send_all(self, queue: str, messages: Sequence[str]) -> None:
        """Send every message or raise QueueUnavailable."""

    def send_later(self, queue: str, message: str, delay_seconds: float) -> None:
        """Send one message that stays invisible for `delay_seconds` (capped at MAX_DELAY_SECONDS), or
        raise QueueUnavailable."""


@dataclass(frozen=True)
class ReceivedMessage:
    """A message taken from a queue for a while (its lease): its text exactly as stored, undecoded."""

    id: str
    pop_receipt: str
    content: str
    dequeue_count: int


@runtime_checkable
class QueueReceiver(Protocol):
    def receive(self, queue: str, max_messages: int, lease_seconds: int) -> list[ReceivedMessage]:
        """Up to `max_messages` visible messages, each invisible to others for `lease_seconds` (then it
        comes back unless deleted); [] when the queue is empty or does not exist. Raises
        QueueUnavailable."""

    def delete(self, queue: str, message: ReceivedMessage) -> None:
        """Delete a received message (nothing when it is already gone); raises QueueUnavailable."""


class StorageQueues:
    """Azure Storage queues (Azurite locally), by connection string or managed identity."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._service: QueueServiceClient | None = None
        self._clients: dict[str, QueueClient] = {}
        self._raw_clients: dict[str, QueueClient] = {}

    def _client(self, queue: str) -> QueueClient:
        if queue not in self._clients:
            from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

            self._clients[queue] = self._service_client().get_queue_client(
                queue,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )
        return self._clients[queue]

    def _raw_client(self, queue: str) -> QueueClient:
        """A client that neither encodes nor decodes: a poison queue holds base64 text (the host's copy
        of a message that failed) and raw text (its copy of one that was not base64) side by side."""
        if queue not in self._raw_clients:
            self._raw_clients[queue] = self._service_client().get_queue_client(queue)
        return self._raw_clients[queue]

    def _service_client(self) -> QueueServiceClient:
        if self._service is None:
            self._service = queue_service_client(self._settings)
        return self._service

    def send_all(self, queue: str, messages: Sequence[str]) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        client = self._client(queue)
        sent: list[int] = []
        try:
            try:
                self._send(client, messages[:1], 0, sent)
            except ResourceNotFoundError:
                client.create_queue()  # first use of a fresh storage account
                self._send(client, messages[:1], 0, sent)
            self._send(client, messages[1:], 1, sent)
        except AzureError as exc:
            raise QueueUnavailable(f"queue {queue!r}: {type(exc).__name__}", sent) from exc

    def send_later(self, queue: str, message: str, delay_seconds: float) -> None:
        from azure.core.exceptions import AzureError

        delay = max(0, min(MAX_DELAY_SECONDS, round(delay_seconds)))
        try:
            self._client(queue).send_message(message, visibility_timeout=delay, time_to_live=NEVER_EXPIRES)
        except AzureError as exc:
            raise QueueUnavailable(f"queue {queue!r}: {type(exc).__name__}") from exc

    def receive(self, queue: str, max_messages: int, lease_seconds: int) -> list[ReceivedMessage]:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            messages = self._raw_client(queue).receive_messages(
                messages_per_page=max_messages, max_messages=max_messages, visibility_timeout=lease_seconds
            )
            return [
                ReceivedMessage(str(m.id), str(m.pop_receipt), str(m.content or ""), m.dequeue_count or 0)
                for m in messages
            ]
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            raise QueueUnavailable(f"queue {queue!r}: {type(exc).__name__}") from exc

    def delete(self, queue: str, message: ReceivedMessage) -> None:
        from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

        try:
            self._raw_client(queue).delete_message(message.id, message.pop_receipt)
        except ResourceNotFoundError:
            pass  # gone already
        except HttpResponseError as exc:
            # Its lease ran out and another receiver holds it now (the host's QueueProcessor treats a
            # PopReceiptMismatch on delete the same way): that receiver deletes it.
            if getattr(exc, "error_code", None) != "PopReceiptMismatch":
                raise QueueUnavailable(f"queue {queue!r}: {type(exc).__name__}") from exc
        except AzureError as exc:
            raise QueueUnavailable(f"queue {queue!r}: {type(exc).__name__}") from exc

    def backlog(self, queue: str) -> int:
        """Messages waiting (Azure's approximate count, one request however long the queue is)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._client(queue).get_queue_properties().approximate_message_count or 0
        except ResourceNotFoundError:
            return 0

    @staticmethod
    def _send(client: QueueClient, messages: Sequence[str], offset: int, sent: list[int]) -> None:
        def one(index: int) -> None:
            client.send_message(messages[index], time_to_live=NEVER_EXPIRES)
            sent.append(offset + index)  # list.append is atomic: safe from the pool's threads

        if len(messages) <= 1:
            for index in range(len(messages)):
                one(index)
            return
        with ThreadPoolExecutor(max_workers=min(_PARALLEL_SENDS, len(messages))) as pool:
            list(pool.map(one, range(len(messages))))


def queue_service_client(settings: Settings) -> QueueServiceClient:
    """The queues' client. Identity-based storage uses the managed identity only when the settings say
    so (`BRIDGE_STORAGE__credential=managedidentity`, as in the app); otherwise, as the Functions host
    does, DefaultAzureCredential, so the operators' CLI works with their own az/azd sign-in."""
    from azure.storage.queue import QueueServiceClient

    if settings.storage_connection_string is not None:
        return QueueServiceClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), transport=_transport()
        )
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    assert settings.storage_queue_service_uri is not None  # load_settings guarantees one of the two
    credential: ManagedIdentityCredential | DefaultAzureCredential
    if settings.storage_managed_identity:
        credential = ManagedIdentityCredential(client_id=settings.storage_client_id)
    else:
        credential = DefaultAzureCredential()
    return QueueServiceClient(
        settings.storage_queue_service_uri, credential=credential, transport=_transport()
    )


def _transport() -> Any:
    """azure-core's requests transport, trusting the environment only when it configures something
    the client reads from it (see shared.storage.proxies)."""
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(use_env_settings=trust_environment(requests=True))
