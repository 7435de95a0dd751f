"""Secret rotation: during a rotation a source's secret setting holds the old and the new secret,
separated by one space, and every scheme accepts a delivery made with either (and nothing else)."""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

import pytest

from shared.sources import AuthenticationFailed
from shared.sources.auth import secrets
from tests.builders import TEST_SECRET, delivery, event, fixture, make_source, signed_headers

NEW_WHSEC = "whsec_" + base64.b64encode(b"the-new-secret-after-rotation").decode()
BODY = json.dumps(event()).encode()

Headers = Callable[[str], tuple[dict[str, str], str | None]]


def basic(secret: str) -> tuple[dict[str, str], str | None]:
    return {"authorization": "Basic " + base64.b64encode(secret.encode()).decode()}, None


def bearer(secret: str) -> tuple[dict[str, str], str | None]:
    return {"authorization": f"Bearer {secret}"}, None


def thinkific(secret: str) -> tuple[dict[str, str], str | None]:
    return {"x-thinkific-hmac-sha256": hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()}, None


def path(secret: str) -> tuple[dict[str, str], str | None]:
    return {}, secret


def learnworlds(secret: str) -> tuple[dict[str, str], str | None]:
    return {"learnworlds-webhook-signature": secret}, None


def standard(secret: str) -> tuple[dict[str, str], str | None]:
    return signed_headers(BODY, secret), None


SCHEMES: list[tuple[str, dict[str, str], str, str, Headers]] = [
    ("xapi", {}, "old-key:old-secret", "new-key:new-secret", basic),
    ("xapi", {"auth": "bearer"}, "old-token", "new-token", bearer),
    ("xapi", {"auth": "standardWebhooks"}, TEST_SECRET, NEW_WHSEC, standard),
    ("caliper", {}, "old-token", "new-token", bearer),
    ("thinkific", {}, "old-key", "new-key", thinkific),
    ("teachable", {}, "old-token", "new-token", path),
    ("docebo", {}, "old-token", "new-token", path),
    ("canvas", {"auth": "token"}, "old-token", "new-token", path),
    ("learnworlds", {}, "old-token", "new-token", learnworlds),
    ("360learning", {}, TEST_SECRET, NEW_WHSEC, standard),
    ("generic", {}, TEST_SECRET, NEW_WHSEC, standard),
]


@pytest.mark.parametrize(
    ("format_name", "options", "old", "new", "sign"),
    SCHEMES,
    ids=[f"{s[0]}-{s[4].__name__}" for s in SCHEMES],
)
def test_either_secret_is_accepted_during_a_rotation_and_nothing_else(
    format_name: str, options: dict[str, str], old: str, new: str, sign: Headers
) -> None:
    source = make_source(format_name, f"{old} {new}", **options)
    for secret in (old, new):
        headers, token = sign(secret)
        source.authenticate(delivery(BODY, headers, path_token=token))
    other = NEW_WHSEC.replace("the", "xyz") if new.startswith("whsec_") else "someone-else:wrong"
    headers, token = sign(
        other if not new.startswith("whsec_") else "whsec_" + base64.b64encode(b"other").decode()
    )
    with pytest.raises(AuthenticationFailed):
        source.authenticate(delivery(BODY, headers, path_token=token))
    # the two halves glued together are not a secret either
    headers, token = sign(f"{old}{new}" if not new.startswith("whsec_") else TEST_SECRET + "x")
    if not new.startswith("whsec_"):
        with pytest.raises(AuthenticationFailed):
            source.authenticate(delivery(BODY, headers, path_token=token))


def test_one_secret_is_one_secret_and_two_are_split_on_one_space() -> None:
    assert secrets("abc") == ("abc",)
    assert secrets("old new") == ("old", "new")
    assert secrets("  old   new ") == ("old", "new")


def test_a_canvas_fixture_still_parses_with_a_rotating_token() -> None:
    source = make_source("canvas", "old new", auth="token")
    assert source.parse(delivery(fixture("canvas/course-progress.json"))).events
