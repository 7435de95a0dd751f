"""Azure Storage access (queues now, tables later), behind small interfaces that tests can fake."""

from shared.storage.queues import QueueSender, QueueUnavailable, StorageQueues

__all__ = ["QueueSender", "QueueUnavailable", "StorageQueues"]
