"""Which Graph record an event addresses, and who owns it.

A course activity is one learner in one course, as one source reports it. It is keyed by what
identifies it in Graph: the source, the learner's Entra object id (after resolution, so the same
person sent by email one day and by UPN the next updates one record) and the course. The key is a
name-based UUID: deterministic on every machine and release, and it carries no personal data into
Graph or the logs.

A sender may name the record itself (`externalCourseActivityId`). That id belongs to the source that
sent it: it is namespaced by the source, so no source can address another's record by guessing or
reusing an id, unless the source's options say its ids address records shared with other systems
(`sharedActivityIds`). Either way the record has an owner (learner and course), and an event for the
same record that names another learner or course is refused, never written.

A source may also say that another source's progress updates its records (`progressFrom`: an HR
system that assigns courses, an LMS that reports progress on them): the named source's events without
an id of their own are then keyed by the naming source's name, so they reach the same record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared.events.model import CanonicalEvent

# Fixed namespaces: derived ids must be the same on every machine and release.
_DERIVED = uuid.UUID("6f1c2b0e-5a47-4c1e-9d0a-3b8e2f7c9a51")
_EXPLICIT = uuid.UUID("0b8e6a53-2f8d-4d53-9a4c-7d1e5f2b3c64")


def same_object_id(one: str | None, other: str | None) -> bool:
    """Whether two Entra object ids (GUIDs: their case says nothing) are the same; two absent ids are
    the same absence, an absent one is no id."""
    if one is None or other is None:
        return one is other
    return one.casefold() == other.casefold()


@dataclass(frozen=True)
class ActivityOwner:
    """Who a course activity belongs to: the source that created it, the learner and the course."""

    source: str
    learner_user_id: str
    course_id: str  # the course's external id, which is also the Viva Learning content's externalId

    def admits(self, other: ActivityOwner) -> bool:
        """Whether an event from `other` may change this owner's record: same learner, same course."""
        return (
            same_object_id(self.learner_user_id, other.learner_user_id) and self.course_id == other.course_id
        )


def derived_activity_id(source: str, learner_user_id: str, course_id: str) -> str:
    name = "\x1f".join((source, learner_user_id.casefold(), course_id))
    return str(uuid.uuid5(_DERIVED, name))


def explicit_activity_id(source: str, sender_id: str) -> str:
    """A sender's own id, made the source's: another source sending the same id gets another record."""
    return str(uuid.uuid5(_EXPLICIT, f"{source}\x1f{sender_id}"))


def activity_id_for(
    event: CanonicalEvent, learner_user_id: str, shared_ids: bool = False, keyed_as: str | None = None
) -> str:
    """The externalcourseActivityId of the record this event updates. `keyed_as`: the source whose
    records an event without an id of its own updates (another source's `progressFrom` names this
    one); default its own."""
    explicit = event.external_course_activity_id
    if explicit is None:
        return derived_activity_id(keyed_as or event.source, learner_user_id, event.course.external_id)
    return explicit if shared_ids else explicit_activity_id(event.source, explicit)


def owner_of(event: CanonicalEvent, learner_user_id: str) -> ActivityOwner:
    return ActivityOwner(event.source, learner_user_id, event.course.external_id)
