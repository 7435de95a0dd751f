"""Viva Learning bridge: learning-platform webhooks in, Graph course activities out.

The package is split by capability, one folder each:

- ``events``   the canonical learning event every source format is translated into;
- ``config``   app settings, validated once at start-up;
- ``sources``  how each platform authenticates a delivery and what its body means;
- ``ingest``   the HTTP webhook: authenticate, parse, validate, enqueue, answer 202;
- ``delivery`` the queue side: resolve learner and content, upsert the Graph record;
- ``graph``    the Microsoft Graph gateway (msgraph-sdk), imported lazily;
- ``cli``      operators' commands (``python -m shared.cli``).
"""

__version__ = "0.1.0"
