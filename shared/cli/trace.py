"""`trace`: "is this learner's completion in Viva Learning, and if not, why?" in one answer.

For each course activity the bridge holds for the learner (found as `forget` finds them: the activity
rows keyed by their Entra object id, and the dead letters naming them as the operator did), in time
order: each event (source, id, when it happened, when the bridge received it, what it said, its
delivery, how its learner was found in Entra), the record the events call for (the fold), every Graph
write of the record with Graph's answer (the row keeps the last WRITE_HISTORY, shared.state.models),
the record as last written to Graph, as Graph has it now (read back), and every parked or
dead-lettered event with its reason and the command that would replay it. Events that never reached
an activity (an unknown or unlicensed learner, an unknown course) are listed apart.

No personal data beyond what the operator typed: the learner's object id, name and mail are never
printed (the record read back is shown by its status only).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.cli import backends
from shared.cli.catalog import graph_settings
from shared.cli.maintenance import _entra_user_id, _learner, run_with_store_and_graph
from shared.delivery.merge import fold, state_of
from shared.events.queue import QueuedEvent
from shared.graph.errors import GraphError, GraphUnavailable
from shared.graph.gateway import ActivityRecord, ActivityWrite, LearningGraph
from shared.operations.batching import throttled
from shared.operations.forget import plan_forget
from shared.state.models import DeadLetterRecord, DeliveryRecord, EventEntry, GraphWrite, LetterState
from shared.state.store import TableStateStore


@dataclass
class Letter:
    id: str
    state: str
    reason: str
    detail: str
    attempts: int
    first_failure: str
    course: str | None
    received: str | None
    said: str | None
    replay: str | None


@dataclass
class Story:
    activity_id: str
    source: str
    course: str
    events: list[dict[str, Any]] = field(default_factory=list)
    calls_for: str = "nothing"
    graph_writes: list[dict[str, Any]] = field(default_factory=list)
    written: str = "nothing yet"
    graph_now: str = "not read"
    letters: list[Letter] = field(default_factory=list)


def trace(args: argparse.Namespace) -> int:
    settings = graph_settings(args)
    learner = _learner(args.learner[0], args.learner[1])

    async def work(store: TableStateStore, graph: LearningGraph) -> tuple[list[Story], list[Letter], bool]:
        user_id = await _entra_user_id(graph, learner)
        known = user_id is not None
        if user_id is None and learner.user_id is not None:
            user_id = str(learner.user_id)
        plan = await plan_forget(store, learner, user_id, as_assigner=False)
        stories: dict[str, Story] = {}
        for activity in sorted(plan.activities, key=lambda a: a.activity_id):
            owner = activity.owner
            assert owner is not None  # plan_forget finds activities by their owner
            if (args.course and owner.course_id != args.course) or (
                args.source and owner.source != args.source
            ):
                continue
            story = Story(activity.activity_id, owner.source, owner.course_id)
            entries = sorted(await store.events(activity.activity_id), key=lambda e: e.occurred_at)
            for entry in entries:
                delivery = await store.delivery(entry.source, entry.event_id)
                story.events.append(_event(entry, delivery, user_id))
            desired = fold(entries)
            story.calls_for = _said(desired) if desired is not None else "no record (nothing left unvoided)"
            story.graph_writes = [_write(w, user_id) for w in sorted(activity.writes, key=lambda w: w.at)]
            if activity.graph_id is not None:
                story.written = _said(state_of(activity))
            elif activity.claimed_at is not None:
                story.written = "being created"
            story.graph_now = await _read_back(graph, activity.activity_id)
            stories[activity.activity_id] = story
        waiting: list[Letter] = []
        for source, event_id in sorted(plan.letters):
            letter = await store.dead_letter(source, event_id)
            if letter is None or (args.source and letter.source != args.source):
                continue
            told = _letter(letter, user_id)
            if args.course and told.course != args.course:
                continue
            owner_story = stories.get(letter.activity_id or "")
            if owner_story is None:
                owner_story = next((s for s in stories.values() if _in(s, letter)), None)
            if (
                owner_story is None
            ):  # a failed write leaves no log entry: the learner's activity of that course
                same_course = [s for s in stories.values() if s.course == told.course]
                owner_story = same_course[0] if len(same_course) == 1 else None
            (owner_story.letters if owner_story is not None else waiting).append(told)
        return list(stories.values()), waiting, known

    stories, waiting, known = run_with_store_and_graph(settings, work)
    if args.json:
        document = {
            "learnerKnownToEntra": known,
            "activities": [asdict(s) for s in stories],
            "waiting": [asdict(w) for w in waiting],
        }
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        _print(stories, waiting, known)
    return 0 if stories or waiting else 1


def _in(story: Story, letter: DeadLetterRecord) -> bool:
    return any(e["id"] == f"{letter.source}:{letter.event_id}" for e in story.events)


def _event(entry: EventEntry, delivery: DeliveryRecord | None, user_id: str | None) -> dict[str, Any]:
    """`user_id` hidden: a record adopted from Graph joins the log under its Graph id
    (`graph:<learner's object id>:<guid>`, merge.graph_baseline)."""
    received = delivery.received_at if delivery is not None else None
    return {
        "id": _hidden(f"{entry.source}:{entry.event_id}", user_id),
        "occurredAt": _when(entry.occurred_at),
        "receivedAt": _when(received) if received is not None else None,
        "said": _said(entry),
        "voidedBy": entry.voided_by,
        "delivery": delivery.status if delivery is not None else None,
        "learnerFoundBy": delivery.learner_found_by if delivery is not None else None,
    }


def _write(write: GraphWrite, user_id: str | None) -> dict[str, Any]:
    return {
        "at": _when(write.at),
        "request": write.request,
        "status": write.status,
        "reason": write.reason,
        "for": _hidden(write.cause, user_id) if write.cause else write.cause,
    }


def _said(state: EventEntry | ActivityWrite | ActivityRecord) -> str:
    status = state.status.value if state.status is not None else "no status"
    parts = [status]
    if state.completion_percentage is not None:
        parts.append(f"{state.completion_percentage}%")
    if state.started_at is not None:
        parts.append(f"started {_when(state.started_at)}")
    if state.completed_at is not None:
        parts.append(f"completed {_when(state.completed_at)}")
    assignment = _assignment_said(state)
    if assignment:
        parts.append(assignment)
    return ", ".join(parts)


def _assignment_said(state: EventEntry | ActivityWrite | ActivityRecord) -> str:
    """What an assignment statement, a withdrawal or an assigned record says (a course missing from
    Viva Learning may be one whose assignment was withdrawn): type and due date, never the assigner."""
    if isinstance(state, EventEntry):
        if state.assignment is None:
            return ""
        if state.assignment.withdrawn:
            return "assignment withdrawn"
        kind, due = state.assignment.assignment_type, state.assignment.due_at
    else:
        kind, due = state.assignment_type, state.due_at
    if kind is None:
        return ""
    return f"assigned ({kind.value}{f', due {_when(due)}' if due is not None else ''})"


def _when(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _read_back(graph: LearningGraph, activity_id: str) -> str:
    try:
        record = await throttled(lambda: graph.get_activity(activity_id), backends.async_sleep)
    except GraphError as exc:
        reason = f": {exc.documented_reason}" if exc.documented_reason else ""
        return f"could not be read (Graph {exc.status} {exc.code}{reason})"
    except GraphUnavailable:
        return "could not be read (Graph unavailable)"
    return _said(record) if record is not None else "no record"


def _letter(letter: DeadLetterRecord, user_id: str | None) -> Letter:
    """`user_id`: the learner's object id, hidden wherever a detail quotes Graph's message."""
    course = received = said = None
    try:
        queued = QueuedEvent.model_validate_json(letter.message)
    except ValidationError:
        queued = None
    if queued is not None:
        received = _when(queued.received_at)
        if queued.event is not None:
            course = queued.event.course.external_id
            percentage = queued.event.completion_percentage
            said = queued.event.status.value + (f", {percentage}%" if percentage is not None else "")
        elif queued.void is not None:
            said = f"voids {queued.void.source}:{queued.void.voided_event_id}"
    replay = None
    if letter.state is not LetterState.REPLAYED:
        # Shell-quoted: event ids are opaque (spaces, quotes, `;` allowed) and the line is pasted.
        replay = f"python -m shared.cli replay {shlex.quote(f'{letter.source}:{letter.event_id}')}"
    return Letter(
        id=f"{letter.source}:{letter.event_id}",
        state=letter.state.value,
        reason=letter.reason,
        detail=_hidden(letter.detail, user_id),
        attempts=letter.attempts,
        first_failure=_when(letter.first_failure),
        course=course,
        received=received,
        said=said,
        replay=replay,
    )


def _hidden(text: str, user_id: str | None) -> str:
    if not user_id:
        return text
    return re.sub(re.escape(user_id), "<learner>", text, flags=re.IGNORECASE)


def _print(stories: list[Story], waiting: list[Letter], known: bool) -> None:
    if not known:
        print("note: Entra has no user matching that learner (a typo, or a deleted account)")
    if not stories and not waiting:
        print("nothing found: no course activity, parked or dead-lettered event for that learner")
        return
    for story in stories:
        print(f"course activity {story.activity_id} (course {story.course}, source {story.source})")
        for event in story.events:
            voided = f", voided by {event['voidedBy']}" if event["voidedBy"] else ""
            received = f", received {event['receivedAt']}" if event["receivedAt"] else ""
            found = f", learner found by {event['learnerFoundBy']}" if event["learnerFoundBy"] else ""
            print(
                f"  {event['occurredAt']}  {event['id']}: {event['said']}{voided} "
                f"[{event['delivery']}{received}{found}]"
            )
        print(f"  the events call for: {story.calls_for}")
        if story.graph_writes:
            print("  Graph writes:")
        for write in story.graph_writes:
            answer = f"Graph {write['status']}" if write["status"] is not None else "no answer"
            outcome = write["reason"] or "ok"
            cause = f" for {write['for']}" if write["for"] else ""
            print(f"    {write['at']}  {write['request']:6} {answer} {outcome}{cause}")
        print(f"  last written to Graph: {story.written}")
        print(f"  Graph has now: {story.graph_now}")
        for letter in story.letters:
            _print_letter(letter)
    if waiting:
        print("events that reached no course activity yet:")
        for letter in waiting:
            _print_letter(letter)


def _print_letter(letter: Letter) -> None:
    about = ", ".join(
        part
        for part in (
            f"course {letter.course}" if letter.course else None,
            f"received {letter.received}" if letter.received else None,
            f"said {letter.said}" if letter.said else None,
        )
        if part
    )
    print(
        f"  {letter.state} {letter.id} ({letter.reason}, {letter.attempts} attempt(s) "
        f"since {letter.first_failure}): {about}"
    )
    print(f"    {letter.detail}")
    if letter.replay:
        print(f"    replay: {letter.replay}")
