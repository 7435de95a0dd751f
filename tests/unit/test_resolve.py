"""How learners are found in Entra, per the source's configuration."""

import pytest

from shared.delivery.exceptions import PermanentFailure
from shared.delivery.resolve import Resolver
from shared.events.model import Learner
from tests.fakes import FakeGraph


def learner(**identifier: object) -> Learner:
    return Learner.model_validate(identifier)


async def test_an_email_is_tried_as_mail_then_upn_then_other_mails() -> None:
    graph = FakeGraph()
    graph.users_by[("otherMails", "old@contoso.example")] = "u-1"
    assert await Resolver(graph).learner_user_id(learner(email="old@contoso.example"), "lms") == "u-1"
    assert graph.calls == ["find_user_id_by:mail", "find_user_id_by_upn", "find_user_id_by:otherMails"]


async def test_an_account_is_found_through_the_sources_attribute() -> None:
    graph = FakeGraph()
    graph.users_by[("employeeId", "E1815")] = "u-2"
    resolver = Resolver(graph, {"hr-lms": "employeeId"})
    account = learner(account={"homePage": "https://lms.example", "name": "E1815"})
    assert await resolver.learner_user_id(account, "hr-lms") == "u-2"
    with pytest.raises(PermanentFailure) as caught:
        await resolver.learner_user_id(account, "other-lms")
    assert caught.value.reason == "learnerNotResolvable"
    assert "accountAttribute" in caught.value.detail


async def test_the_same_account_name_in_two_sources_is_two_learners() -> None:
    graph = FakeGraph()
    graph.users_by[("employeeId", "42")] = "u-hr"
    graph.users_by[("extension_lms_id", "42")] = "u-lms"
    resolver = Resolver(graph, {"hr": "employeeId", "lms": "extension_lms_id"})
    account = learner(account={"homePage": "https://x.example", "name": "42"})
    assert await resolver.learner_user_id(account, "hr") == "u-hr"
    assert await resolver.learner_user_id(account, "lms") == "u-lms"


async def test_a_user_id_is_checked_once_and_an_unknown_one_is_not_found() -> None:
    graph = FakeGraph()
    uid = "4a1f3c2e-8b7d-4e6a-9f05-1c2d3e4f5a6b"
    graph.users_by_upn["ada.lovelace@contoso.example"] = uid
    resolver = Resolver(graph)
    assert await resolver.learner_user_id(learner(userId=uid.upper()), "lms") == uid
    assert await resolver.learner_user_id(learner(userId=uid), "lms") == uid
    assert graph.calls == ["find_user_id_by_upn"]  # cached
    with pytest.raises(PermanentFailure) as caught:  # not in Entra (yet): parked like an unknown email
        await resolver.learner_user_id(learner(userId="7e2d9b4c-3a1f-4c8e-b6d2-0f9e8d7c6b5a"), "lms")
    assert caught.value.reason == "learnerNotFound"


@pytest.mark.parametrize(
    ("found_in", "learner_fields", "found_by"),
    [
        ("mail", {"email": "ada@contoso.example"}, "email (mail)"),
        ("upn", {"email": "ada@contoso.example"}, "email (userPrincipalName)"),
        ("otherMails", {"email": "ada@contoso.example"}, "email (otherMails)"),
        ("upn", {"upn": "ada@contoso.example"}, "upn"),
    ],
)
async def test_resolving_a_learner_says_which_identifier_and_attribute_found_them(
    found_in: str, learner_fields: dict[str, str], found_by: str
) -> None:
    graph = FakeGraph()
    if found_in == "mail":
        graph.users_by_mail["ada@contoso.example"] = "u-1"
    elif found_in == "upn":
        graph.users_by_upn["ada@contoso.example"] = "u-1"
    else:
        graph.users_by[("otherMails", "ada@contoso.example")] = "u-1"
    resolver = Resolver(graph)
    assert await resolver.resolve_learner(learner(**learner_fields), "lms") == ("u-1", found_by)
    assert await resolver.resolve_learner(learner(**learner_fields), "lms") == ("u-1", found_by)  # cached


async def test_an_account_is_found_by_the_sources_attribute_and_says_so() -> None:
    graph = FakeGraph()
    graph.users_by[("employeeId", "E-7")] = "u-7"
    account = learner(account={"homePage": "https://hr.contoso.example", "name": "E-7"})
    assert await Resolver(graph, {"hr": "employeeId"}).resolve_learner(account, "hr") == (
        "u-7",
        "account (employeeId)",
    )
