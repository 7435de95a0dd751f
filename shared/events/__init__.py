"""The canonical learning event: the one shape every source format becomes."""

from shared.events.model import (
    Account,
    CanonicalEvent,
    Course,
    CourseStatus,
    Learner,
)

__all__ = ["Account", "CanonicalEvent", "Course", "CourseStatus", "Learner"]
