"""A local stand-in for the Microsoft Graph endpoints the bridge uses.

It stores records in SQLite, validates every write against the official v1.0 OpenAPI schema, answers
errors in Graph's shape (404, 409, 429/503 with Retry-After), runs JSON batches (`POST /v1.0/$batch`)
request by request, and can be told at run time to inject faults and latency (`POST /_sandbox/faults`).
The bridge reaches it through the real msgraph-sdk.
"""

from devtools.graph_sandbox.app import create_app

__all__ = ["create_app"]
