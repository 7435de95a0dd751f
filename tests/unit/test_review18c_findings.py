"""Review 18c (issue 18, assigned learning): defects found in the changes since review 18b."""

from __future__ import annotations

from dataclasses import replace

from tests.unit.test_reconcile import GRACE_ID, assigned_record, by_content, run


async def test_repairing_a_record_whose_assigner_graph_spells_in_another_case_is_one_patch() -> None:
    """shared/operations/reconcile.py: "an object id in any case is the same id (no drift, and no
    re-creation on repair, for an assigner Graph spells in another case)"; docs/operate.md (reconcile):
    a changed field is repaired by the PATCH back to the events' fold, only a different type or assigner
    (which no PATCH can change) deletes and creates the record again. A record whose notes were edited
    in Graph, and whose assigner Graph spells in upper case, is repaired with one PATCH, not deleted."""
    graph, state, upserter, key = await assigned_record()
    graph.activities[key] = replace(
        graph.activities[key], notes="Edited in Graph.", assigner_user_id=GRACE_ID.upper()
    )
    graph.calls.clear()

    report = await run(graph, state, upserter, repair=True)

    assert [(d.kind, d.fields, d.repaired) for d in report.drift] == [("changed", ("notes",), True)]
    writes = [c for c in graph.calls if c in ("create_activity", "update_activity", "delete_activity")]
    assert writes == ["update_activity"]
    [repaired] = by_content(graph, "c-202")
    assert repaired.notes == "Before the audit."
