"""The msgraph-sdk gateway against the sandbox: real SDK, real HTTP, Graph's URL and key rules."""

from datetime import UTC, datetime

import pytest

from shared.config.settings import load_settings
from shared.events.model import CourseStatus
from shared.graph.errors import GraphError
from shared.graph.gateway import ActivityWrite
from shared.graph.msgraph_gateway import MsGraphLearningGraph, build_learning_graph
from tests.builders import USER_ID
from tests.e2e.stack import Stack


def gateway(stack: Stack, provider: str | None = None) -> MsGraphLearningGraph:
    values = dict(stack.settings_values)
    if provider:
        values["BRIDGE_PROVIDER_REGISTRATION_ID"] = provider
    return build_learning_graph(load_settings(values))


async def test_users_are_found_by_upn_and_by_mail_case_insensitively(stack: Stack) -> None:
    graph = gateway(stack)
    assert await graph.find_user_id_by_upn("Ada.Lovelace@contoso.example") == USER_ID
    assert await graph.find_user_id_by("mail", "ADA.LOVELACE@contoso.example") == USER_ID
    assert await graph.find_user_id_by_upn("nobody@contoso.example") is None
    assert await graph.find_user_id_by("mail", "o'brien@contoso.example") is None  # quote escaped


async def test_users_are_found_by_other_mails_and_by_configured_attributes(stack: Stack) -> None:
    graph = gateway(stack)
    assert await graph.find_user_id_by("otherMails", "a.lovelace@old.contoso.example") == USER_ID
    assert await graph.find_user_id_by("employeeId", "E1815") == USER_ID
    assert await graph.find_user_id_by("extension_docebo_userId", "12301") == USER_ID
    assert await graph.find_user_id_by("employeeId", "E0000") is None


async def test_external_ids_with_quotes_and_slashes_address_the_right_record(stack: Stack) -> None:
    graph = gateway(stack)
    content_id = await graph.find_content_id("it's-a-course/with 'quotes'")
    assert content_id is not None
    external_id = f"o'neil/{datetime.now(UTC).timestamp()}"
    fields = ActivityWrite(status=CourseStatus.IN_PROGRESS, completion_percentage=5)
    created = await graph.create_activity(external_id, USER_ID, content_id, fields)
    found = await graph.get_activity(external_id)
    assert found is not None
    assert (found.id, found.external_id, found.completion_percentage) == (created.id, external_id, 5)


async def test_a_second_create_is_a_409_and_an_update_is_applied(stack: Stack) -> None:
    graph = gateway(stack)
    content_id = await graph.find_content_id("course-202")
    assert content_id is not None
    external_id = f"dup-{datetime.now(UTC).timestamp()}"
    created = await graph.create_activity(
        external_id, USER_ID, content_id, ActivityWrite(status=CourseStatus.IN_PROGRESS)
    )
    with pytest.raises(GraphError) as caught:
        await graph.create_activity(
            external_id, USER_ID, content_id, ActivityWrite(status=CourseStatus.IN_PROGRESS)
        )
    assert caught.value.status == 409
    done = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
    await graph.update_activity(
        created.id, ActivityWrite(status=CourseStatus.COMPLETED, completion_percentage=100, completed_at=done)
    )
    record = await graph.get_activity(external_id)
    assert record is not None
    assert (record.status, record.completion_percentage, record.completed_at) == (
        CourseStatus.COMPLETED,
        100,
        done,
    )


async def test_writes_to_a_provider_without_sync_are_refused_with_graphs_error(stack: Stack) -> None:
    graph = gateway(stack, provider="0f0e0d0c-0b0a-4909-8807-060504030201")
    with pytest.raises(GraphError) as caught:
        await graph.create_activity("x", USER_ID, "c", ActivityWrite(status=CourseStatus.IN_PROGRESS))
    assert (caught.value.status, caught.value.code) == (403, "Forbidden")
