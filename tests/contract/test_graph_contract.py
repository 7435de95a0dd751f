"""Graph's behaviour as the bridge relies on it: the same cases against the unit tests' FakeGraph and
against the sandbox through the real msgraph-sdk gateway. The sandbox's rules cite Graph's pages
(devtools/graph_sandbox/rules.py); the fake must agree with every one of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.config.settings import GraphAuth, Settings
from shared.events.model import AssignmentType, CourseStatus
from shared.graph.errors import GraphError
from shared.graph.gateway import MAX_BATCH, ActivityRecord, ActivityWrite, ContentWrite, LearningGraph
from tests.contract.conftest import DISABLED_PROVIDER, ENABLED_PROVIDER, seeded_fake
from tests.fakes import FakeGraph

ADA = "4a1f3c2e-8b7d-4e6a-9f05-1c2d3e4f5a6b"
T = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
IN_PROGRESS = ActivityWrite(CourseStatus.IN_PROGRESS, 40, T)


def gateway(sandbox_url: str, provider: str) -> LearningGraph:
    from shared.graph.msgraph_gateway import build_learning_graph

    settings = Settings(
        sources={},
        provider_registration_id=provider,
        graph_base_url=f"{sandbox_url}/v1.0",
        graph_auth=GraphAuth.ANONYMOUS,
    )
    return build_learning_graph(settings)


@pytest.fixture(params=["fake", "sandbox"])
def graph_for(request: pytest.FixtureRequest) -> object:
    """A factory: the Graph under test, for a provider of the seed."""

    def build(provider: str = ENABLED_PROVIDER) -> LearningGraph:
        if request.param == "fake":
            return seeded_fake(provider)
        return gateway(request.getfixturevalue("sandbox_url"), provider)

    return build


@pytest.fixture
def graph(graph_for: object) -> LearningGraph:
    return graph_for()  # type: ignore[operator,no-any-return]


async def content(graph: LearningGraph) -> str:
    found = await graph.find_content_id("course-101")
    assert found is not None
    return found


def new_id() -> str:
    return f"contract-{uuid.uuid4()}"


async def test_an_unknown_activity_reads_as_none(graph: LearningGraph) -> None:
    assert await graph.get_activity(new_id()) is None


async def test_a_created_activity_reads_back_as_written(graph: LearningGraph) -> None:
    external_id, content_id = new_id(), await content(graph)
    created = await graph.create_activity(external_id, ADA, content_id, IN_PROGRESS)
    read = await graph.get_activity(external_id)
    assert read == created
    assert (read.external_id, read.learner_user_id, read.learning_content_id) == (
        external_id,
        ADA,
        content_id,
    )
    assert (read.status, read.completion_percentage, read.started_at) == (CourseStatus.IN_PROGRESS, 40, T)


async def test_external_ids_with_quotes_and_slashes_address_the_right_record(graph: LearningGraph) -> None:
    content_id = await graph.find_content_id("it's-a-course/with 'quotes'")
    assert content_id is not None
    external_id = f"o'neil/{uuid.uuid4()}"
    await graph.create_activity(external_id, ADA, content_id, IN_PROGRESS)
    found = await graph.get_activity(external_id)
    assert found is not None
    assert found.external_id == external_id


async def test_not_started_is_refused_for_a_self_initiated_course(graph: LearningGraph) -> None:
    with pytest.raises(GraphError) as refused:
        await graph.create_activity(
            new_id(), ADA, await content(graph), ActivityWrite(CourseStatus.NOT_STARTED)
        )
    assert refused.value.status == 400


async def test_a_percentage_above_100_is_refused(graph: LearningGraph) -> None:
    with pytest.raises(GraphError) as refused:
        await graph.create_activity(
            new_id(), ADA, await content(graph), ActivityWrite(CourseStatus.IN_PROGRESS, 101)
        )
    assert refused.value.status == 400


async def test_a_second_record_with_the_same_external_id_is_refused(graph: LearningGraph) -> None:
    external_id, content_id = new_id(), await content(graph)
    await graph.create_activity(external_id, ADA, content_id, IN_PROGRESS)
    with pytest.raises(GraphError) as refused:
        await graph.create_activity(external_id, ADA, content_id, IN_PROGRESS)
    assert refused.value.status == 409


async def test_an_unknown_learner_is_refused(graph: LearningGraph) -> None:
    with pytest.raises(GraphError) as refused:
        await graph.create_activity(new_id(), str(uuid.uuid4()), await content(graph), IN_PROGRESS)
    assert refused.value.status == 404


async def test_an_update_without_status_is_refused(graph: LearningGraph) -> None:
    created = await graph.create_activity(new_id(), ADA, await content(graph), IN_PROGRESS)
    with pytest.raises(GraphError) as refused:
        await graph.update_activity(created.id, ActivityWrite(completion_percentage=60))
    assert refused.value.status == 400


async def test_an_update_with_status_changes_the_record(graph: LearningGraph) -> None:
    external_id = new_id()
    created = await graph.create_activity(external_id, ADA, await content(graph), IN_PROGRESS)
    await graph.update_activity(created.id, ActivityWrite(CourseStatus.IN_PROGRESS, 60))
    read = await graph.get_activity(external_id)
    assert read is not None
    assert (read.status, read.completion_percentage, read.started_at) == (CourseStatus.IN_PROGRESS, 60, T)


async def test_fields_sent_as_null_are_cleared(graph: LearningGraph) -> None:
    external_id = new_id()
    completed = ActivityWrite(CourseStatus.COMPLETED, 100, T, T)
    created = await graph.create_activity(external_id, ADA, await content(graph), completed)
    back = ActivityWrite(CourseStatus.IN_PROGRESS, 40, clear=frozenset({"completed_at"}))
    await graph.update_activity(created.id, back)
    read = await graph.get_activity(external_id)
    assert read is not None
    assert (read.status, read.completion_percentage, read.completed_at) == (
        CourseStatus.IN_PROGRESS,
        40,
        None,
    )


async def test_updating_an_unknown_record_is_not_found(graph: LearningGraph) -> None:
    with pytest.raises(GraphError) as refused:
        await graph.update_activity(str(uuid.uuid4()), IN_PROGRESS)
    assert refused.value.status == 404


async def test_a_deleted_record_is_gone_and_a_second_delete_says_so(graph: LearningGraph) -> None:
    external_id = new_id()
    created = await graph.create_activity(external_id, ADA, await content(graph), IN_PROGRESS)
    assert await graph.delete_activity(created.id) is True
    assert await graph.get_activity(external_id) is None
    assert await graph.delete_activity(created.id) is False


async def test_writes_are_refused_while_course_activity_sync_is_off(graph_for: object) -> None:
    enabled: LearningGraph = graph_for()  # type: ignore[operator]
    disabled: LearningGraph = graph_for(DISABLED_PROVIDER)  # type: ignore[operator]
    content_id = await content(enabled)
    for write in (
        disabled.create_activity(new_id(), ADA, content_id, IN_PROGRESS),
        disabled.update_activity(str(uuid.uuid4()), IN_PROGRESS),
        disabled.delete_activity(str(uuid.uuid4())),
    ):
        with pytest.raises(GraphError) as refused:
            await write
        assert refused.value.status == 400


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("mail", "Ada.Lovelace@contoso.example"),
        ("userPrincipalName", "ada.lovelace@contoso.example"),
        ("otherMails", "a.lovelace@old.contoso.example"),
        ("employeeId", "E1815"),
        ("extension_docebo_userId", "12301"),
        ("onPremisesSamAccountName", "alovelace"),
    ],
)
async def test_a_user_is_found_by_each_attribute(graph: LearningGraph, attribute: str, value: str) -> None:
    assert await graph.find_user_id_by(attribute, value) == ADA


async def test_a_user_is_found_by_upn_and_unknown_users_are_none(graph: LearningGraph) -> None:
    assert await graph.find_user_id_by_upn("Ada.Lovelace@contoso.example") == ADA
    assert await graph.find_user_id_by_upn("nobody@contoso.example") is None
    assert await graph.find_user_id_by("mail", "nobody@contoso.example") is None


async def test_content_is_found_by_external_id_and_unknown_content_is_none(graph: LearningGraph) -> None:
    assert await graph.find_content_id("course-101") is not None
    assert await graph.find_content_id("no-such-course") is None


COURSE = ContentWrite("Difference Engines", "https://academy.contoso.example/courses/de", "en-us")


async def test_content_put_by_external_id_is_created_then_found(graph: LearningGraph) -> None:
    external_id = f"catalog-{uuid.uuid4()}"
    full = ContentWrite(
        "Difference Engines",
        "https://academy.contoso.example/courses/de",
        "en-us",
        description="Gears.",
        format="Course",
        duration=timedelta(hours=1, minutes=30),
        level="beginner",
        skill_tags=("mathematics", "engineering"),
        is_active=True,
    )
    content_id = await graph.put_content(external_id, full)
    assert content_id
    assert await graph.find_content_id(external_id) == content_id


async def test_putting_known_content_again_updates_it_in_place(graph: LearningGraph) -> None:
    external_id = f"catalog-o'brien/{uuid.uuid4()}"
    first = await graph.put_content(external_id, COURSE)
    again = await graph.put_content(external_id, ContentWrite("Renamed", COURSE.content_web_url, "en-gb"))
    assert again == first
    assert await graph.find_content_id(external_id) == first


async def test_registered_content_takes_course_activities_at_once(graph: LearningGraph) -> None:
    content_id = await graph.put_content(f"catalog-{uuid.uuid4()}", COURSE)
    created = await graph.create_activity(new_id(), ADA, content_id, IN_PROGRESS)
    assert created.learning_content_id == content_id


async def test_the_sdk_never_retries_on_its_own(sandbox_url: str) -> None:
    """A 429 comes straight back with its Retry-After: waiting is the queue's job, not the SDK's."""
    import httpx

    external_id = new_id()
    fault = {"status": 429, "retryAfterSeconds": 1, "method": "GET", "pathContains": external_id}
    httpx.post(f"{sandbox_url}/_sandbox/faults", json={"failNext": [fault]}, timeout=10).raise_for_status()
    try:
        with pytest.raises(GraphError) as throttled:
            await gateway(sandbox_url, ENABLED_PROVIDER).get_activity(external_id)
        assert (throttled.value.status, throttled.value.retry_after) == (429, 1)
    finally:
        httpx.post(f"{sandbox_url}/_sandbox/faults", json={}, timeout=10)


async def test_plain_user_lookups_go_without_advanced_query_headers(sandbox_url: str) -> None:
    import httpx

    graph = gateway(sandbox_url, ENABLED_PROVIDER)
    marker = f"{uuid.uuid4().hex}@contoso.example"
    await graph.find_user_id_by("mail", marker)
    await graph.find_user_id_by("extension_docebo_userId", marker)
    log = httpx.get(f"{sandbox_url}/_sandbox/requests", timeout=10).json()["value"]
    plain, advanced = [r for r in log if marker in r["path"] or marker in str(r["query"])]
    assert (plain["consistencyLevel"], "$count" in plain["query"]) == (None, False)
    assert (advanced["consistencyLevel"], advanced["query"].get("$count")) == ("eventual", "true")


async def test_a_user_is_found_by_object_id_in_any_case(graph: LearningGraph) -> None:
    assert await graph.find_user_id_by_upn(ADA.upper()) == ADA
    assert await graph.find_user_id_by_upn(str(uuid.uuid4())) is None


# ---- JSON batching: several requests in one `POST /$batch`, each answered on its own -------------


def throttle_next_read(graph: LearningGraph, request: pytest.FixtureRequest, key: str, seconds: int) -> None:
    """The next read of `key` is throttled (429 with Retry-After): the fake's way or the sandbox's."""
    if isinstance(graph, FakeGraph):
        error = GraphError(429, "TooManyRequests", "Please retry again later.", retry_after=seconds)
        graph.errors_for[("get_activity", key)].append(error)
        return
    import httpx

    fault = {"status": 429, "retryAfterSeconds": seconds, "method": "GET", "pathContains": key}
    sandbox_url = request.getfixturevalue("sandbox_url")
    httpx.post(f"{sandbox_url}/_sandbox/faults", json={"failNext": [fault]}, timeout=10).raise_for_status()


@pytest.fixture
def no_faults_after(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.node.callspec.id:
        import httpx

        httpx.post(f"{request.getfixturevalue('sandbox_url')}/_sandbox/faults", json={}, timeout=10)


async def test_a_batch_of_reads_answers_each_request_in_the_order_asked(graph: LearningGraph) -> None:
    content_id = await content(graph)
    first, second, unknown = new_id(), new_id(), new_id()
    created = [await graph.create_activity(e, ADA, content_id, IN_PROGRESS) for e in (first, second)]
    answers = await graph.get_activities([second, unknown, first])
    assert answers == [created[1], None, created[0]]
    assert answers == [await graph.get_activity(e) for e in (second, unknown, first)]


async def test_a_throttled_request_in_a_batch_fails_alone_with_its_retry_after(
    graph: LearningGraph, request: pytest.FixtureRequest, no_faults_after: None
) -> None:
    content_id = await content(graph)
    kept, throttled = new_id(), new_id()
    created = await graph.create_activity(kept, ADA, content_id, IN_PROGRESS)
    await graph.create_activity(throttled, ADA, content_id, IN_PROGRESS)
    throttle_next_read(graph, request, throttled, 2)
    answers = await graph.get_activities([kept, throttled])
    assert answers[0] == created
    assert isinstance(answers[1], GraphError)
    assert (answers[1].status, answers[1].retry_after, answers[1].transient) == (429, 2, True)
    again = await graph.get_activities([throttled])  # asked again, it is answered
    assert isinstance(again[0], ActivityRecord)
    assert again[0].external_id == throttled


async def test_a_batch_of_more_than_twenty_requests_is_refused_whole(graph: LearningGraph) -> None:
    assert await graph.get_activities([]) == []
    with pytest.raises(GraphError) as refused:
        await graph.get_activities([new_id() for _ in range(MAX_BATCH + 1)])
    assert refused.value.status == 400
    assert await graph.get_activities([new_id() for _ in range(MAX_BATCH)]) == [None] * MAX_BATCH


async def test_content_is_looked_up_and_put_in_batches_each_under_its_own_rules(graph: LearningGraph) -> None:
    known = await content(graph)
    assert await graph.find_content_ids(["course-101", "no-such-course"]) == [known, None]
    new, untitled = f"catalog-{uuid.uuid4()}", f"catalog-{uuid.uuid4()}"
    answers = await graph.put_contents(
        [(new, COURSE), (untitled, ContentWrite("", COURSE.content_web_url, "en"))]
    )
    assert isinstance(answers[0], str)
    assert isinstance(answers[1], GraphError)
    assert answers[1].status == 400  # a new content needs a title: refused alone, the other written
    assert await graph.find_content_ids([new, untitled]) == [answers[0], None]


# ---- the learning API's documented answers (resources/learningcourseactivity-error-codes) ---------

GRACE = "7e2d9b4c-3a1f-4c8e-b6d2-0f9e8d7c6b5a"


class Tenant:
    """The tenant beside its records (its plan, learners' licences, a provider's sync, content another
    provider created), set the fake's way or through the sandbox's /_sandbox/tenant; `restore` puts
    back what every other test expects."""

    def __init__(self, graph: LearningGraph, request: pytest.FixtureRequest) -> None:
        self.graph = graph
        self.request = request
        self.sandbox_url: str | None = (
            None if isinstance(graph, FakeGraph) else request.getfixturevalue("sandbox_url")
        )

    def _control(self, settings: dict[str, object]) -> None:
        import httpx

        answer = httpx.post(f"{self.sandbox_url}/_sandbox/tenant", json=settings, timeout=10)
        answer.raise_for_status()

    def plan(self, has_plan: bool) -> None:
        if isinstance(self.graph, FakeGraph):
            self.graph.service_plan = has_plan
        else:
            self._control({"servicePlan": has_plan})

    def licence(self, user_id: str, licensed: bool) -> None:
        if isinstance(self.graph, FakeGraph):
            (self.graph.unlicensed.discard if licensed else self.graph.unlicensed.add)(user_id)
        else:
            self._control({"licences": {user_id: licensed}})

    def sync(self, enabled: bool) -> None:
        if isinstance(self.graph, FakeGraph):
            self.graph.sync_enabled = enabled
        else:
            self._control({"courseActivitySync": {ENABLED_PROVIDER: enabled}})

    async def content_of_another_provider(self) -> str:
        if isinstance(self.graph, FakeGraph):
            content_id = f"content-{uuid.uuid4()}"
            self.graph.foreign_contents.add(content_id)
            return content_id
        assert self.sandbox_url is not None
        return await gateway(self.sandbox_url, DISABLED_PROVIDER).put_content(
            f"catalog-{uuid.uuid4()}", COURSE
        )

    def restore(self) -> None:
        if self.sandbox_url is not None:
            self._control(
                {
                    "servicePlan": True,
                    "licences": {ADA: True, GRACE: True},
                    "courseActivitySync": {ENABLED_PROVIDER: True},
                }
            )


@pytest.fixture
def tenant(graph: LearningGraph, request: pytest.FixtureRequest) -> Iterator[Tenant]:
    settings = Tenant(graph, request)
    try:
        yield settings
    finally:
        settings.restore()


async def test_a_learner_without_a_licence_is_refused_on_create_and_update_until_licensed(
    graph: LearningGraph, tenant: Tenant
) -> None:
    content_id = await content(graph)
    record = await graph.create_activity(new_id(), ADA, content_id, IN_PROGRESS)
    tenant.licence(ADA, False)
    with pytest.raises(GraphError) as created:
        await graph.create_activity(new_id(), ADA, content_id, IN_PROGRESS)
    with pytest.raises(GraphError) as updated:
        await graph.update_activity(record.id, ActivityWrite(CourseStatus.COMPLETED, 100, T, T))
    for refused in (created.value, updated.value):
        assert (refused.status, refused.documented_reason) == (403, "learnerNotLicensed")
    assert (await graph.create_activity(new_id(), GRACE, content_id, IN_PROGRESS)).learner_user_id == GRACE
    tenant.licence(ADA, True)
    await graph.update_activity(record.id, ActivityWrite(CourseStatus.COMPLETED, 100, T, T))


async def test_a_tenant_without_a_plan_is_refused_every_course_activity_call(
    graph: LearningGraph, tenant: Tenant
) -> None:
    content_id = await content(graph)
    external_id = new_id()
    record = await graph.create_activity(external_id, ADA, content_id, IN_PROGRESS)
    tenant.plan(False)
    for call in (
        graph.get_activity(external_id),
        graph.create_activity(new_id(), ADA, content_id, IN_PROGRESS),
        graph.update_activity(record.id, IN_PROGRESS),
        graph.delete_activity(record.id),
    ):
        with pytest.raises(GraphError) as refused:
            await call
        assert (refused.value.status, refused.value.documented_reason) == (403, "tenantNotLicensed")
    [answer] = await graph.get_activities([external_id])  # in a batch too, as its own answer
    assert isinstance(answer, GraphError)
    assert answer.documented_reason == "tenantNotLicensed"
    tenant.plan(True)
    assert await graph.get_activity(external_id) == record


async def test_writes_while_sync_is_off_are_refused_as_provider_not_enabled(
    graph: LearningGraph, tenant: Tenant
) -> None:
    content_id = await content(graph)
    tenant.sync(False)
    with pytest.raises(GraphError) as refused:
        await graph.create_activity(new_id(), ADA, content_id, IN_PROGRESS)
    assert (refused.value.status, refused.value.documented_reason) == (400, "providerNotEnabled")
    tenant.sync(True)
    await graph.create_activity(new_id(), ADA, content_id, IN_PROGRESS)


async def test_content_another_provider_created_is_refused_as_such(
    graph: LearningGraph, tenant: Tenant
) -> None:
    foreign = await tenant.content_of_another_provider()
    with pytest.raises(GraphError) as refused:
        await graph.create_activity(new_id(), ADA, foreign, IN_PROGRESS)
    assert (refused.value.status, refused.value.documented_reason) == (403, "contentOfAnotherProvider")
    with pytest.raises(GraphError) as unknown:
        await graph.create_activity(new_id(), ADA, str(uuid.uuid4()), IN_PROGRESS)
    assert (unknown.value.status, unknown.value.documented_reason) == (404, None)


@pytest.mark.parametrize(
    ("fault", "wait"),
    [
        ({"status": 429, "retryAfterMinutes": 2}, 120),  # the documented answer: no header
        ({"status": 503, "retryAfterMinutes": 1}, 60),
        ({"status": 429, "retryAfterMinutes": 2, "retryAfterSeconds": 7}, 7),  # the header wins
    ],
)
async def test_the_wait_a_throttled_answer_names_in_minutes_is_read(
    sandbox_url: str, fault: dict[str, int], wait: int
) -> None:
    import httpx

    graph = gateway(sandbox_url, ENABLED_PROVIDER)
    alone, batched = new_id(), new_id()
    faults = [{**fault, "method": "GET", "pathContains": key} for key in (alone, batched)]
    httpx.post(f"{sandbox_url}/_sandbox/faults", json={"failNext": faults}, timeout=10).raise_for_status()
    try:
        with pytest.raises(GraphError) as throttled:
            await graph.get_activity(alone)
        [answer] = await graph.get_activities([batched])
        assert isinstance(answer, GraphError)
        for refused in (throttled.value, answer):
            assert (refused.status, refused.retry_after) == (fault["status"], wait)
            if "retryAfterSeconds" not in fault:
                assert refused.message == f"Retry after {fault['retryAfterMinutes']} minutes"
    finally:
        httpx.post(f"{sandbox_url}/_sandbox/faults", json={}, timeout=10)


def _assigned(**more: object) -> ActivityWrite:
    fields: dict[str, object] = {
        "status": CourseStatus.NOT_STARTED,
        "assignment_type": AssignmentType.REQUIRED,
        "assigned_at": T,
        "due_at": T + timedelta(days=30),
        "notes": "Before the audit.",
        **more,
    }
    return ActivityWrite(**fields)  # type: ignore[arg-type]


async def test_an_assignment_reads_back_as_written_not_started(graph: LearningGraph) -> None:
    external_id, content_id = new_id(), await content(graph)
    created = await graph.create_activity(external_id, ADA, content_id, _assigned())
    read = await graph.get_activity(external_id)
    assert read == created
    assert read is not None
    assert (read.status, read.assignment_type, read.due_at, read.notes, read.assigned_at) == (
        CourseStatus.NOT_STARTED,
        AssignmentType.REQUIRED,
        T + timedelta(days=30),
        "Before the audit.",
        T,
    )
    assert read.started_at is None


async def test_an_assignments_due_date_and_notes_change_by_patch_and_clear_with_null(
    graph: LearningGraph,
) -> None:
    external_id, content_id = new_id(), await content(graph)
    created = await graph.create_activity(external_id, ADA, content_id, _assigned())
    moved = T + timedelta(days=60)
    await graph.update_activity(
        created.id,
        ActivityWrite(
            CourseStatus.IN_PROGRESS,
            50,
            assignment_type=AssignmentType.REQUIRED,
            due_at=moved,
            clear=frozenset({"notes"}),
        ),
    )
    read = await graph.get_activity(external_id)
    assert read is not None
    assert (read.status, read.completion_percentage, read.due_at, read.notes) == (
        CourseStatus.IN_PROGRESS,
        50,
        moved,
        None,
    )


async def test_a_patch_changes_neither_a_records_type_nor_its_assignment_type(graph: LearningGraph) -> None:
    external_id, content_id = new_id(), await content(graph)
    assigned = await graph.create_activity(external_id, ADA, content_id, _assigned())
    with pytest.raises(GraphError) as refused:
        await graph.update_activity(assigned.id, IN_PROGRESS)  # as a self-initiated course
    assert refused.value.status == 400
    # assignmentType is not sent in a PATCH (the Update page cannot change it): the record keeps its own
    await graph.update_activity(
        assigned.id, ActivityWrite(CourseStatus.NOT_STARTED, assignment_type=AssignmentType.RECOMMENDED)
    )
    read = await graph.get_activity(external_id)
    assert read is not None
    assert read.assignment_type is AssignmentType.REQUIRED


async def test_not_started_is_refused_on_a_self_initiated_course_only(graph: LearningGraph) -> None:
    content_id = await content(graph)
    with pytest.raises(GraphError):
        await graph.create_activity(new_id(), ADA, content_id, ActivityWrite(CourseStatus.NOT_STARTED))
    created = await graph.create_activity(new_id(), ADA, content_id, _assigned())
    assert created.status is CourseStatus.NOT_STARTED
