"""The operator's loop, end to end: an event for a learner who does not exist yet is parked and
visible with its reason; once the user exists, replaying it applies it; replaying again does nothing."""

import uuid
from pathlib import Path

from tests.builders import event
from tests.e2e.stack import Stack, cli, create_user, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_a_parked_event_is_listed_then_replayed_once_its_learner_exists(stack: Stack) -> None:
    email = f"newhire-{uuid.uuid4().hex[:8]}@contoso.example"
    event_id = f"op-{uuid.uuid4()}"
    stack.send(event(eventId=event_id, learner={"email": email}))
    wait_for(lambda: stack.dead_letter("generic", event_id), what="the parked event")

    listed = cli(stack, "deadletters", "list", "--reason", "learnerNotFound")
    assert listed.returncode == 0, listed.stderr
    assert f"generic:{event_id}" in listed.stdout
    assert "parked" in listed.stdout
    shown = cli(stack, "deadletters", "show", f"generic:{event_id}")
    assert '"reason": "learnerNotFound"' in shown.stdout
    assert email not in listed.stdout  # the list names events, not people

    create_user(stack, email, "New Hire")
    replayed = cli(stack, "replay", f"generic:{event_id}")
    assert "replayed 1 event" in replayed.stdout, replayed.stderr
    wait_for(lambda: stack.activity_of("generic", event_id), what="the replayed event in Graph")
    wait_for(lambda: stack.dead_letter("generic", event_id) is None or None, what="the letter resolved")

    again = cli(stack, "replay", f"generic:{event_id}")
    assert "replayed 0 event" in again.stdout

    status = cli(stack, "status")
    assert status.returncode == 0, status.stderr
    assert "queue backlog: " in status.stdout
    assert "received" not in status.stdout  # the delivery scan is opt-in
    totals = cli(stack, "status", "--totals")
    assert totals.returncode == 0, totals.stderr
    assert "generic" in totals.stdout
    assert "received" in totals.stdout


def test_ids_must_name_a_source_and_an_event(stack: Stack) -> None:
    result = cli(stack, "deadletters", "show", "no-colon")
    assert result.returncode == 2
    assert "source:eventId" in result.stderr
