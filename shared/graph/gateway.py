"""What the bridge needs from Graph, as one small interface: the seam between logic and msgraph-sdk.

The delivery logic is written against `LearningGraph`; production uses the msgraph-sdk implementation
(`shared.graph.msgraph_gateway`), unit tests a fake, end-to-end tests the real SDK against the sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from shared.events.model import AssignmentType, CourseStatus
from shared.graph.errors import GraphError

#: At most this many requests go in one JSON batch ("Combine multiple HTTP requests using JSON
#: batching", Batch size limitations); Graph refuses a larger batch with 400.
MAX_BATCH = 20


@dataclass(frozen=True)
class ActivityRecord:
    """A course activity as Graph holds it: a learningSelfInitiatedCourse, or a learningAssignment
    (`assignment_type` set)."""

    id: str
    external_id: str
    learner_user_id: str
    learning_content_id: str
    status: CourseStatus | None
    completion_percentage: int | None
    started_at: datetime | None
    completed_at: datetime | None
    assignment_type: AssignmentType | None = None
    assigned_at: datetime | None = None
    due_at: datetime | None = None
    notes: str | None = None
    assigner_user_id: str | None = None

    @property
    def is_assignment(self) -> bool:
        return self.assignment_type is not None


@dataclass(frozen=True)
class ActivityWrite:
    """The writable fields of a course activity; None means 'leave as is', and a field named in `clear`
    is written as JSON null (only a voided statement moves a record back).

    `assignment_type` set makes it a learningAssignment write (`@odata.type`); a create sends the type,
    a PATCH never does (the Update page does not list assignmentType as changeable), nor the
    assigner. An assignment has no startedDateTime (the SDK's learningAssignment has none)."""

    status: CourseStatus | None = None
    completion_percentage: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    clear: frozenset[str] = frozenset()
    assignment_type: AssignmentType | None = None
    assigned_at: datetime | None = None
    due_at: datetime | None = None
    notes: str | None = None
    assigner_user_id: str | None = None

    def is_empty(self) -> bool:
        return self == ActivityWrite()


@dataclass(frozen=True)
class ContentWrite:
    """A learningContent as the provider describes it (the Update learningContent page): the three
    fields Graph requires on create, and the optional ones, None meaning 'not given' (left as is)."""

    title: str
    content_web_url: str
    language_tag: str
    description: str | None = None
    format: str | None = None
    duration: timedelta | None = None
    source_name: str | None = None
    thumbnail_web_url: str | None = None
    level: str | None = None
    number_of_pages: int | None = None
    is_active: bool | None = None
    is_premium: bool | None = None
    is_searchable: bool | None = None
    additional_tags: tuple[str, ...] | None = None
    contributors: tuple[str, ...] | None = None
    skill_tags: tuple[str, ...] | None = None
    created_at: datetime | None = None
    last_modified_at: datetime | None = None


def record_from_json(doc: Mapping[str, Any]) -> ActivityRecord:
    """An ActivityRecord from Graph's JSON (either spelling of the external id is accepted).
    ValueError for one without its id or learner: the state store would keep "None" as the record's
    Graph id, or an owner no event has."""
    for key in ("id", "learnerUserId"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ValueError(f"the activity has no {key}")

    def when(key: str) -> datetime | None:
        value = doc.get(key)
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    due = doc.get("dueDateTime")
    notes = doc.get("notes")
    assignment = str(doc.get("@odata.type", "")).endswith("learningAssignment")
    return ActivityRecord(
        id=str(doc.get("id", "")),
        external_id=str(doc.get("externalcourseActivityId") or doc.get("externalCourseActivityId") or ""),
        learner_user_id=str(doc.get("learnerUserId", "")),
        learning_content_id=str(doc.get("learningContentId", "")),
        status=CourseStatus.parse(doc.get("status")),
        completion_percentage=doc.get("completionPercentage"),
        started_at=when("startedDateTime"),
        completed_at=when("completedDateTime"),
        # A record of a type the bridge does not know (an assignment of type peerRecommended) reads as
        # required: it is an assignment all the same, and the bridge never PATCHes its type.
        assignment_type=(AssignmentType.parse(doc.get("assignmentType")) or AssignmentType.REQUIRED)
        if assignment
        else None,
        assigned_at=when("assignedDateTime") if assignment else None,
        due_at=due_from_json(due) if assignment and isinstance(due, dict) else None,
        notes=str(notes["content"])
        if assignment and isinstance(notes, dict) and notes.get("content")
        else None,
        assigner_user_id=str(doc["assignerUserId"]) if assignment and doc.get("assignerUserId") else None,
    )


def due_to_json(when: datetime) -> dict[str, str]:
    """A dateTimeTimeZone as the Create example writes it: wall time without offset, seven fraction
    digits, and the zone by name (the bridge always writes UTC)."""
    utc = when.astimezone(UTC)
    # isoformat, not strftime: %Y leaves a year before 1000 unpadded ("999-06-01"), which is no ISO date.
    return {
        "dateTime": f"{utc.replace(tzinfo=None, microsecond=0).isoformat()}.{utc.microsecond:06d}0",
        "timeZone": "UTC",
    }


def due_from_json(doc: Mapping[str, Any]) -> datetime | None:
    """A dateTimeTimeZone read back: UTC or an IANA zone; None for a zone the bridge cannot place (a
    Windows zone name)."""
    text, zone = doc.get("dateTime"), doc.get("timeZone") or "UTC"
    if not isinstance(text, str) or not isinstance(zone, str):
        return None
    try:
        # Python 3.11 reads at most six fraction digits: Graph writes seven.
        head, _, fraction = text.partition(".")
        naive = datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}" if fraction else head)
        tz = UTC if zone.upper() in ("UTC", "Z") else ZoneInfo(zone)
    except (ValueError, KeyError):
        return None
    return naive.replace(tzinfo=tz).astimezone(UTC) if naive.tzinfo is None else naive.astimezone(UTC)


class LearningGraph(Protocol):
    async def find_user_id_by_upn(self, upn: str) -> str | None:
        """The Entra object id of the user with that userPrincipalName or object id
        (`GET /users/{id | userPrincipalName}`), or None."""

    async def find_user_id_by(self, attribute: str, value: str) -> str | None:
        """The Entra object id of the one user whose `attribute` equals `value` (`otherMails`: contains
        it), or None. More than one match is a GraphError: the bridge never picks one of them.
        Advanced-query headers go only with the attributes that need them (onPremisesSamAccountName,
        extension attributes)."""

    async def find_content_id(self, external_id: str) -> str | None:
        """The Viva Learning content id for the provider's external content id, or None."""

    async def first_content_id(self) -> str | None:
        """Any one of the provider's learning contents' ids (`doctor`: content is readable), or None
        when the provider has none."""

    async def put_content(self, external_id: str, content: ContentWrite) -> str:
        """PATCH learningContents(externalId='...'): creates the provider's content or updates it;
        its Graph id. Needs LearningContent.ReadWrite.All (403 without)."""

    async def get_activity(self, external_id: str) -> ActivityRecord | None:
        """The course activity with that externalcourseActivityId, or None."""

    # JSON batches (`POST /$batch`): several requests in one round trip. Each request is answered on its
    # own: its value, or the GraphError it failed with (a throttled one carries its Retry-After), while
    # the others' answers stand. Answers come in the order asked. At most MAX_BATCH requests (a larger
    # batch is refused with GraphError 400); an empty one sends nothing. A failure of the batch as a
    # whole (unreachable, throttled, refused) raises as a single request's would.

    async def get_activities(self, external_ids: Sequence[str]) -> list[ActivityRecord | GraphError | None]:
        """`get_activity` for each external id, in one batch (None for a 404)."""

    async def find_content_ids(self, external_ids: Sequence[str]) -> list[str | GraphError | None]:
        """`find_content_id` for each external content id, in one batch (None for a 404)."""

    async def put_contents(self, contents: Sequence[tuple[str, ContentWrite]]) -> list[str | GraphError]:
        """`put_content` for each (external id, content), in one batch."""

    async def create_activity(
        self, external_id: str, learner_user_id: str, content_id: str, fields: ActivityWrite
    ) -> ActivityRecord:
        """POST a new learningSelfInitiatedCourse (with learningProviderId, the registration id).
        Raises GraphError(409) if one with that external id exists."""

    async def update_activity(self, activity_id: str, fields: ActivityWrite) -> None:
        """PATCH an existing course activity by its Graph id: `@odata.type`, `status` and the given
        fields, with those named in `fields.clear` as null."""

    async def delete_activity(self, activity_id: str) -> bool:
        """DELETE a course activity by its Graph id; False when it was already gone (404)."""
