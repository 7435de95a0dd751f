"""Second review of issue 18 (assigned learning): defects found by trying to break it. Each test fails
on the code as reviewed and says which README line, issue line or Graph page the behaviour contradicts.
(The first review's findings are in test_review18_findings.py; not repeated here.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.delivery.merge import contribution
from shared.events.model import CanonicalEvent
from shared.operations.importing import _event, _from_columns
from shared.operations.retention import apply_retention
from tests.builders import TEST_SECRET, delivery, fixture, make_source
from tests.fakes import MemoryStateStore

# --- merge and Graph requests ------------------------------------------------------------------------


async def test_the_readme_sample_s_due_date_move_is_one_patch_and_keeps_the_assigner() -> None:
    """README "Assigned courses": "`samples/generic/course-assigned.json` assigns a course with a due date
    in Paris time, then moves the due date", and the requests table: "due date or notes moved | one
    `PATCH`" ("A moved due date or new notes is one PATCH"). The sample's second statement moves the
    due date and does not repeat the assigner; as "a field it leaves out is cleared" covers the assigner
    too, merge.same_kind sees a new assigner (None) and the bridge DELETEs the learner's assignment and
    POSTs it again without Grace as its assigner. Any source that restates an assignment without naming
    who assigned it (the generic format's own sample) turns every due-date move into a delete and create
    (what a learner sees in Viva Learning disappears and comes back) and loses the assigner."""
    from shared.delivery import CourseActivityUpserter
    from tests.builders import USER_ID
    from tests.fakes import FakeGraph

    grace = "7e2d9b4c-3a1f-4c8e-b6d2-0f9e8d7c6b5a"
    graph = FakeGraph()
    graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    graph.users_by_mail["grace@contoso.example"] = grace
    graph.contents["course-101"] = "content-101"
    upserter = CourseActivityUpserter(graph, MemoryStateStore())
    root = Path(__file__).resolve().parents[2]
    assigned, moved = json.loads((root / "samples/generic/course-assigned.json").read_text())
    await upserter.apply(CanonicalEvent.model_validate({"source": "generic", **assigned}))
    before = len(graph.calls)
    await upserter.apply(CanonicalEvent.model_validate({"source": "generic", **moved}))
    writes = [c for c in graph.calls[before:] if c.endswith("_activity")]
    [record] = graph.activities.values()
    assert record.due_at == datetime(2027, 1, 15, 16, tzinfo=UTC)
    assert writes == ["update_activity"], f"moving the sample's due date cost {writes}"
    assert record.assigner_user_id == grace


# --- vendor mappings --------------------------------------------------------------------------------


def test_a_canvas_enrollment_the_learner_rejected_withdraws_its_assignment() -> None:
    """README "Vendor enrolments" (Canvas: withdrawn by "the same events, deleted or inactive") and the
    issue: "a way to say an assignment was withdrawn". Canvas's Enrollment model (instructure/canvas-lms
    app/models/enrollment.rb, `workflow do`) has `state :invited do event :reject, :transitions_to =>
    :rejected` (and the same from `active`): the learner declined the invitation, or it was rejected.
    An `enrollment_updated` with workflow_state `rejected` is ignored as "says nothing of the learner's
    progress", so the `invited` enrollment's assignment stays "Assigned to you" (required, in Viva
    Learning) for a course the learner is not enrolled in, forever: no later Canvas event ends it."""
    from tests.unit.sources.test_canvas import ASSIGNING, JWT, enrollment

    body = enrollment("enrollment-deleted.json", workflow_state="rejected")
    result = make_source("canvas", **ASSIGNING).read(delivery(body, JWT))
    assert [e.assignment.withdrawn if e.assignment else None for e in result.events] == [True], (
        f"a rejected enrollment: events {result.events}, ignored {[i.reason for i in result.ignored]}"
    )


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "right/UTC"])
def test_a_docebo_time_zone_the_canonical_event_refuses_is_refused_when_the_source_is_configured(
    zone: str,
) -> None:
    """README, Docebo: "Zone-less timestamps read in `timeZone` (IANA, default UTC)"; the first review
    made the canonical `timeZone` refuse zoneinfo names that are no tz database zone (`localtime`, a
    link to the host's own zone; `posixrules`; the `right/` leap-second copies). DoceboOptions still
    accepts any name ZoneInfo() can open, so such a source is configured without a word, reads every
    timestamp in the worker host's zone, and each enrolment whose deadline is a date alone is acknowledged
    as `unmappable` (its dueDate + timeZone refused by the model): the assignment is dropped while the
    delivery is answered 202. The option must be refused when the source is configured, as the canonical
    field is."""
    from shared.sources import SourceConfigurationError

    with pytest.raises(SourceConfigurationError):
        make_source(
            "docebo", "tok", timeZone=zone, assignments=True, accountAttribute="extension_docebo_userId"
        )


@pytest.mark.parametrize(
    "assignment",
    [
        {},  # no type, not withdrawn
        {"withdrawn": False},
        {"type": "required", "dueDate": "2026-12-31"},  # a due date without its time zone
        {"withdrawn": True, "type": "required"},
        {"type": "required", "dueAt": "2026-12-31T17:00:00Z", "dueDate": "2026-12-31", "timeZone": "UTC"},
    ],
)
def test_the_json_schema_refuses_an_assignment_the_bridge_refuses(assignment: dict[str, object]) -> None:
    """Issue 18: "JSON Schema regenerated"; README: the body's JSON Schema is
    schemas/canonical-event.schema.json, "generated from the model", which vendors validate against
    (and the OpenAPI description references). The model's own rules for an assignment (its type unless
    withdrawn, `withdrawn` alone, `dueDate` with `timeZone`, `dueAt` or `dueDate`) are in a
    model_validator only, so the schema accepts each of these bodies and the webhook refuses them with
    400. The Learner's "exactly one identifier" rule shows the way it is done for the schema
    (json_schema_extra minProperties/maxProperties): the schema says it, and a schema-valid learner is
    a valid learner."""
    import jsonschema
    from pydantic import ValidationError

    from tests.builders import event

    root = Path(__file__).resolve().parents[2]
    schema = json.loads((root / "schemas/canonical-event.schema.json").read_text())
    body = event(source="generic", status="notStarted", completionPercentage=None, assignment=assignment)
    with pytest.raises(ValidationError):
        CanonicalEvent.model_validate(body)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(body))
    assert errors, f"the schema accepts {assignment}, which the bridge refuses with 400"


# --- retention ----------------------------------------------------------------------------------------


async def test_retention_bounds_the_log_of_a_360learning_path_whose_statuses_state_its_assignment() -> None:
    """README "Bounded state": "an activity's older log entries are folded into one baseline entry";
    retention.compactable keeps every assignment statement as it is because "they are few per record
    (assigned, moved, withdrawn)". But with `assignments: true` a 360Learning source states the path's
    assignment with *every* `path.session.user.status.updated` (README "Vendor enrolments": "each path
    status states the path's assignment"): every progress update of an assigned path is a statement, so
    its log is never compacted and grows with every status change, whatever BRIDGE_RETENTION_DAYS says.
    A year of 60 status updates of one learner's path, all older than the period, stays 60 entries."""
    source = make_source(
        "360learning", TEST_SECRET, accountAttribute="extension_lms_userId", assignments=True
    )
    template = json.loads(fixture("360learning/path-status-updated.json"))
    store = MemoryStateStore()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(60):
        doc = json.loads(json.dumps(template))
        doc["data"]["status"] = "late" if n % 2 else "onTime"
        doc["data"]["updatedAt"] = (start + timedelta(days=5 * n)).isoformat()
        body = json.dumps(doc).encode()
        [event] = source.read(delivery(body, {"webhook-id": f"msg_{n}"})).events
        assert event.assignment is not None  # each status states the assignment
        await store.add_event("path-activity", contribution(event))
    store.written = dict.fromkeys(store.written, datetime.now(UTC) - timedelta(days=500))
    await apply_retention(store, datetime.now(UTC), 400)
    left = await store.events("path-activity")
    assert len(left) <= 3, f"{len(left)} log entries left after retention (60 old status updates)"


# --- import -------------------------------------------------------------------------------------------

_ROW = {
    "eventId": "p-1",
    "occurredAt": "2026-11-20T14:03:00Z",
    "learnerEmail": "ada.lovelace@contoso.example",
    "courseId": "course-101",
    "status": "inProgress",
    "completionPercentage": "40",
}


@pytest.mark.parametrize(("no", "yes"), [("0", "1"), ("no", "yes"), ("off", "on"), ("N", "Y")])
def test_an_import_s_assignment_withdrawn_column_reads_no_as_it_reads_yes(no: str, yes: str) -> None:
    """README, `import`: "`assignmentWithdrawn` (`true`; `false`, as a spreadsheet's boolean column holds
    it, means no assignment statement)". The column is read as a boolean (pydantic's lax bool), so `1`,
    `yes`, `on`, `Y` withdraw the assignment, but their opposites `0`, `no`, `off`, `N`, which a
    spreadsheet or an LMS export writes in the same column, are not "no statement": they become
    `{"withdrawn": false}` and the progress line is refused ("an assignment needs its type"). Only the
    literal `false` is special-cased (importing._from_columns)."""
    _where, withdrawing = _event(_from_columns({**_ROW, "assignmentWithdrawn": yes}), "generic", "line 2")
    assert isinstance(withdrawing, CanonicalEvent)
    assert withdrawing.assignment is not None
    assert withdrawing.assignment.withdrawn  # the column is a boolean column
    _where, progress = _event(_from_columns({**_ROW, "assignmentWithdrawn": no}), "generic", "line 3")
    assert isinstance(progress, CanonicalEvent), f"{no!r} refused the line: {progress}"
    assert progress.assignment is None


# --- assignments disabled ---------------------------------------------------------------------------


async def test_a_bridge_deployed_without_assignments_writes_no_learning_assignment_from_its_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README "Permission": without `enableAssignments` the bridge does not write assignments; "Events
    already queued when the setting is turned off fail at Graph (403) and are dead-lettered". That 403
    is not what Graph documents: the Create page (api/employeeexperienceuser-post-learningcourse
    activities.md, Permissions) and RULES-assignments-providers.md list `LearningAssignedCourse.ReadWrite.
    All` (least) *or* `LearningSelfInitiatedCourse.ReadWrite.All` (higher) for the same POST (the
    Delete page too), and the bridge's identity always holds the latter. Nothing on the queue
    side looks at BRIDGE_ASSIGNMENTS_ENABLED (only the webhook and `import` do), so a queued (or
    replayed) assignment is written as a learningAssignment (and a withdrawal deletes the learner's
    record) by a bridge that says it writes none."""
    from shared.config import load_settings
    from shared.events.queue import QueuedEvent
    from shared.graph import msgraph_gateway
    from shared.runtime import Bridge
    from tests.builders import USER_ID, canonical
    from tests.fakes import FakeGraph, FakeQueue
    from tests.unit.test_retention import ENV

    graph = FakeGraph()
    graph.users_by_mail["ada.lovelace@contoso.example"] = USER_ID
    graph.contents["course-101"] = "content-101"
    settings = load_settings({**ENV, "BRIDGE_ASSIGNMENTS_ENABLED": "false"})
    assert not settings.assignments_enabled
    bridge = Bridge(settings, queues=FakeQueue())
    store = MemoryStateStore()
    monkeypatch.setattr(bridge, "state", lambda: store)
    monkeypatch.setattr(msgraph_gateway, "build_learning_graph", lambda _settings: graph)
    assigned = canonical(
        eventId="queued-before-the-switch",
        status="notStarted",
        completionPercentage=None,
        assignment={"type": "required", "dueAt": "2026-12-31T17:00:00Z"},
    )
    body = QueuedEvent(event=assigned, received_at=datetime.now(UTC)).model_dump_json(by_alias=True)
    await bridge.worker().process(body, 1)
    written = [r for r in graph.activities.values() if r.is_assignment]
    assert written == [], "a bridge deployed without assignments wrote a learningAssignment"


def test_a_360learning_path_completion_from_an_assigning_source_passes_while_assignments_are_off() -> None:
    """README "Vendor enrolments": "a source with `assignments` on a bridge without them gets 422
    `assignments-disabled` for every delivery that holds an enrolment (its progress and completions
    still pass)". For 360Learning the only progress of a path is `path.session.user.status.updated`, and
    with `assignments` on every one of them states the assignment (three_sixty_learning._translate), so
    a path's completion (`successful`) is refused with 422 like an enrolment: the learner's completion
    never reaches the queue, contrary to what the README promises the operator who has not enabled
    assignments yet."""
    from shared.events.queue import EVENTS_QUEUE
    from shared.ingest.handler import WebhookIngestor, WebhookRequest
    from tests.builders import signed_headers
    from tests.fakes import FakeQueue

    source = make_source(
        "360learning", TEST_SECRET, name="lms", accountAttribute="extension_lms_userId", assignments=True
    )
    queue = FakeQueue()
    ingestor = WebhookIngestor({"lms": source}, queue, 1024 * 1024, assignments_enabled=False)
    body = fixture("360learning/path-status-updated.json").replace(b'"onTime"', b'"successful"')
    headers = {**signed_headers(body), "content-type": "application/json"}
    response = ingestor.handle(WebhookRequest("lms", headers, body))
    assert response.status == 202, f"{response.status} {response.body}"
    assert len(queue.sent.get(EVENTS_QUEUE, [])) == 1


# --- the sandbox ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_the_sandbox_answers_an_unknown_activity_as_the_error_page_documents(method: str) -> None:
    """RULES-assignments-providers.md, "Errors the learning API documents" (resources/learningcourse
    activity-error-codes): unknown activity -> 404 "The requested assignment {id} doesn't exist.". The
    sandbox (which "speaks for Graph's docs") answers its own "Course activity was not found." for a
    GET, PATCH or DELETE of an id it does not hold (app._find_activity, errors.not_found), as the first
    review found for the missing-field answers."""
    from aiohttp.test_utils import TestClient, TestServer

    from devtools.graph_sandbox.app import create_app

    app = create_app()
    provider = "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90"
    app["sandbox"].store.put_provider(
        {"id": provider, "displayName": "LMS", "isCourseActivitySyncEnabled": True}
    )
    unknown = "c2d1e4f3-0000-4000-8000-00000000abcd"
    path = f"/v1.0/employeeExperience/learningProviders/{provider}/learningCourseActivities/{unknown}"
    body = {"@odata.type": "#microsoft.graph.learningAssignment", "status": "inProgress"}
    async with TestClient(TestServer(app)) as client:
        response = await client.request(method, path, json=body if method == "PATCH" else None)
        answer = await response.json()
    assert response.status == 404
    assert answer["error"]["message"] == f"The requested assignment {unknown} doesn't exist."


@pytest.mark.parametrize(
    "wall_time", ["2026-12-31", "2026-12-31 17:00:00", "2026-W53-4T17:00:00", "20261231T170000"]
)
def test_the_sandbox_refuses_a_due_date_time_not_written_as_date_t_time(wall_time: str) -> None:
    """RULES-assignments-providers.md: `dueDateTime` is a dateTimeTimeZone `{"dateTime":
    "2022-09-22T16:05:00.0000000", "timeZone": "UTC"}`; resources/datetimetimezone.md: dateTime is "A
    single point of time in a combined date and time representation ({date}T{time}; for example,
    2017-08-29T04:00:00.0000000)". rules._wall_time takes whatever Python 3.11's fromisoformat reads: a
    date alone, a space for the T, an ISO week date, the basic format. The sandbox is what holds the
    bridge's due_to_json to Graph's format (the first review's year-999 due date was caught by it), so
    it lets through shapes the page does not describe."""
    from devtools.graph_sandbox import rules
    from devtools.graph_sandbox.errors import GraphHttpError

    with pytest.raises(GraphHttpError):
        rules.check_assignment_fields({"dueDateTime": {"dateTime": wall_time, "timeZone": "UTC"}})


async def test_the_sandbox_gets_an_assignment_by_id_where_the_get_page_documents_it() -> None:
    """RULES-assignments-providers.md, learningAssignment: "Get by id is not provider-scoped: `GET
    /employeeExperience/learningCourseActivities/{id}`" (api/learningcourseactivity-get.md). The
    sandbox routes GET by id only under a provider (`.../learningProviders/{id}/learningCourseActivities/
    {id}`, which the Get page does not list) and answers the documented address with 400 "Resource not
    found for the segment": a tool or test written against the sandbox reads assignments where Graph
    has no such endpoint, and one written against the page fails in the sandbox."""
    from aiohttp.test_utils import TestClient, TestServer

    from devtools.graph_sandbox.app import create_app

    app = create_app()
    provider = "6c4bd8a2-1f0e-4a57-9b1d-3e8f2a7c5d90"
    store = app["sandbox"].store
    store.put_provider({"id": provider, "displayName": "LMS", "isCourseActivitySyncEnabled": True})
    record = {
        "@odata.type": "#microsoft.graph.learningAssignment",
        "id": "7ba2228a-e020-11ec-9d64-0242ac120002:1",
        "externalcourseActivityId": "12a2228a-e020-11ec-9d64-0242ac120002",
        "learnerUserId": "7ba2228a-e020-11ec-9d64-0242ac120002",
        "learningContentId": "57baf9dc-e020-11ec-9d64-0242ac120002",
        "learningProviderId": provider,
        "assignmentType": "required",
        "status": "notStarted",
    }
    store.add_activity(provider, record)
    async with TestClient(TestServer(app)) as client:
        response = await client.get(f"/v1.0/employeeExperience/learningCourseActivities/{record['id']}")
        answer = await response.json()
    assert response.status == 200, answer
    assert answer["id"] == record["id"]
