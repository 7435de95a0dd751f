"""The Microsoft Graph side: what the bridge needs from Graph, and the msgraph-sdk implementation.

Importing this package is cheap on purpose: msgraph-sdk (about a second and 70 MB on first use) is
imported only when `build_learning_graph` runs, on the queue side, once per worker.
"""

from shared.graph.errors import GraphError, GraphUnavailable
from shared.graph.gateway import ActivityRecord, ActivityWrite, LearningGraph

__all__ = ["ActivityRecord", "ActivityWrite", "GraphError", "GraphUnavailable", "LearningGraph"]
