"""xAPI as an LRS: statements the ADL conformance suite says an LRS must accept still translate (or
are ignored with a reason); those it says must be rejected are refused whole with 400. The cases are
our own, modelled on the suite (tests/fixtures/xapi/conformance/cases.json says which config each
follows); `python -m devtools.adl_conformance SUITE` runs the suite's own."""

import json
from typing import Any

import pytest

from shared.sources import InvalidPayload
from tests.builders import delivery, fixture, make_source

CASES = json.loads(fixture("xapi/conformance/cases.json"))


def merged(base: Any, change: Any) -> Any:
    """The suite's deep merge; a null in `change` removes the property."""
    if not isinstance(base, dict) or not isinstance(change, dict):
        return change
    result = dict(base)
    for key, value in change.items():
        if value is None and key in result and not key.startswith("http"):
            del result[key]
        else:
            result[key] = merged(result.get(key), value)
    return result


def post(statement: Any, endpoint: str = "xapi") -> Any:
    source = make_source("xapi", "key:secret", accountAttribute="employeeId")
    headers = {"content-type": "application/json", "x-experience-api-version": "1.0.3"}
    return source.parse(delivery(json.dumps(statement).encode(), headers, endpoint=endpoint))


@pytest.mark.parametrize("endpoint", ["xapi", "webhook"])
@pytest.mark.parametrize("case", CASES["accept"], ids=lambda c: c["suite"])
def test_a_statement_an_lrs_must_accept_translates_or_is_ignored_with_a_reason(
    case: dict[str, Any], endpoint: str
) -> None:
    result = post(merged(CASES["base"], case["change"]), endpoint)
    assert len(result.events) + len(result.ignored) + len(result.voids) == 1
    assert all(item.reason for item in result.ignored)


@pytest.mark.parametrize("endpoint", ["xapi", "webhook"])
@pytest.mark.parametrize("case", CASES["reject"], ids=lambda c: c["suite"])
def test_a_statement_an_lrs_must_reject_is_400_with_a_pointer(case: dict[str, Any], endpoint: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        post(merged(CASES["base"], case["change"]), endpoint)
    assert caught.value.status == 400
    assert all(p.pointer.startswith("/") for p in caught.value.problems)


def test_one_invalid_statement_refuses_the_whole_batch_naming_its_place() -> None:
    good = CASES["base"]
    bad = merged(good, {"id": "not-a-uuid"})
    with pytest.raises(InvalidPayload) as caught:
        post({"statements": [good, bad]})
    assert [p.pointer for p in caught.value.problems] == ["/statements/1/id"]
    with pytest.raises(InvalidPayload) as caught:
        post([good, bad])
    assert [p.pointer for p in caught.value.problems] == ["/1/id"]
