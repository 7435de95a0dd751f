"""The canonical learning event: the one shape every source format becomes.

The model is imported on first use of a name here, not with the package: `shared.events.names` is
imported by function_app at start-up, and importing the package must not load pydantic with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.events.model import Account, CanonicalEvent, Course, CourseStatus, Learner

__all__ = ["Account", "CanonicalEvent", "Course", "CourseStatus", "Learner"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("shared.events.model"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
