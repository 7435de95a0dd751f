import json
import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.events.model import AssignmentType, CourseStatus
from shared.sources import AuthenticationFailed, InvalidPayload, SourceConfigurationError
from tests.builders import delivery, fixture, make_source


def key_pair(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**public, "kid": kid, "alg": "RS256", "use": "sig"}


CANVAS_KEY, CANVAS_JWK = key_pair("canvas-2026")
OTHER_KEY, _ = key_pair("canvas-2026")
JWKS = {"keys": [CANVAS_JWK]}


def signed(name: str, key: rsa.RSAPrivateKey = CANVAS_KEY, **claims: Any) -> bytes:
    document = {**json.loads(fixture(f"canvas/{name}")), "exp": int(time.time()) + 300, **claims}
    document = {k: v for k, v in document.items() if v is not None}
    return jwt.encode(document, key, algorithm="RS256", headers={"kid": "canvas-2026"}).encode()


def test_course_progress_gives_a_percentage_from_requirement_counts() -> None:
    source = make_source("canvas", jwks=JWKS)
    [event] = source.parse(
        delivery(signed("course-progress.json"), {"content-type": "application/jwt"})
    ).events
    assert (event.status, event.completion_percentage) == (CourseStatus.IN_PROGRESS, 75)
    assert (event.course.external_id, event.learner.email) == ("101", "ada.lovelace@contoso.example")


def test_course_completed_completes_and_the_same_event_gets_the_same_id() -> None:
    source = make_source("canvas", jwks=JWKS)
    first = source.parse(delivery(signed("course-completed.json"))).events[0]
    again = source.parse(delivery(signed("course-completed.json"))).events[0]
    assert first.status is CourseStatus.COMPLETED
    assert first.event_id == again.event_id


def test_a_jwt_from_another_key_or_no_jwt_is_401() -> None:
    source = make_source("canvas", jwks=JWKS)
    for body in (signed("course-progress.json", OTHER_KEY), fixture("canvas/course-progress.json"), b"x.y.z"):
        with pytest.raises(AuthenticationFailed):
            source.authenticate(delivery(body))
    source.authenticate(delivery(signed("course-progress.json")))


def test_without_signing_a_token_in_the_path_authenticates() -> None:
    source = make_source("canvas", "path-token-1", auth="token")
    body = fixture("canvas/course-progress.json")
    source.authenticate(delivery(body, path_token="path-token-1"))
    with pytest.raises(AuthenticationFailed):
        source.authenticate(delivery(body, path_token="path-token-2"))
    assert source.parse(delivery(body)).events[0].completion_percentage == 75


def test_the_sis_id_can_be_the_course_id() -> None:
    source = make_source("canvas", "t", auth="token", courseId="sisSourceId")
    assert (
        source.parse(delivery(fixture("canvas/course-progress.json"))).events[0].course.external_id
        == "AE-101"
    )


def test_jwt_mode_needs_keys_and_token_mode_a_secret() -> None:
    with pytest.raises(SourceConfigurationError, match="jwks"):
        make_source("canvas")
    with pytest.raises(SourceConfigurationError, match="secret"):
        make_source("canvas", auth="token")


def test_other_live_events_are_ignored_and_non_events_are_400() -> None:
    source = make_source("canvas", "t", auth="token")
    document = json.loads(fixture("canvas/course-progress.json"))
    document["metadata"]["event_name"] = "asset_accessed"
    assert source.parse(delivery(json.dumps(document).encode())).ignored[0].reason == "eventNotProgress"
    with pytest.raises(InvalidPayload):
        source.parse(delivery(b'{"body": {}}'))


def test_a_jwt_without_exp_or_expired_is_401() -> None:
    source = make_source("canvas", jwks=JWKS)
    for body in (signed("course-progress.json", exp=None), signed("course-progress.json", exp=1_000_000)):
        with pytest.raises(AuthenticationFailed):
            source.authenticate(delivery(body))


def test_a_jwt_older_than_the_configured_maximum_age_is_401() -> None:
    source = make_source("canvas", jwks=JWKS, maxTokenAgeSeconds=600)
    source.authenticate(delivery(signed("course-progress.json", iat=int(time.time()) - 60)))
    for body in (signed("course-progress.json"), signed("course-progress.json", iat=int(time.time()) - 3600)):
        with pytest.raises(AuthenticationFailed):
            source.authenticate(delivery(body))


def test_every_key_is_tried_and_a_key_of_another_type_does_not_stop_the_loop() -> None:
    ec = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key().public_key()))
    other_rsa = key_pair("canvas-2026")[1]
    jwks = {"keys": [{**ec, "kid": "canvas-2026", "alg": "ES256"}, other_rsa, CANVAS_JWK]}
    source = make_source("canvas", jwks=jwks)
    source.authenticate(delivery(signed("course-progress.json")))


def test_a_resigned_event_keeps_its_derived_id() -> None:
    source = make_source("canvas", jwks=JWKS)
    first = source.parse(delivery(signed("course-completed.json", exp=int(time.time()) + 100)))
    again = source.parse(delivery(signed("course-completed.json", exp=int(time.time()) + 200)))
    assert first.events[0].event_id == again.events[0].event_id


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


ASSIGNING: dict[str, Any] = {"jwks": JWKS, "assignments": True, "learner": "account"}
JWT = {"content-type": "application/jwt"}


def enrollment(name: str, **body: Any) -> bytes:
    document = json.loads(fixture(f"canvas/{name}"))
    document["body"].update(body)
    document["exp"] = int(time.time()) + 300
    return jwt.encode(document, CANVAS_KEY, algorithm="RS256", headers={"kid": "canvas-2026"}).encode()


def test_a_student_enrollment_is_an_assignment_of_the_course_by_its_local_id() -> None:
    result = make_source("canvas", **ASSIGNING).read(delivery(enrollment("enrollment-created.json"), JWT))
    [event] = result.events
    assert event.status is CourseStatus.NOT_STARTED
    assert event.course.external_id == "101"  # the global id 21070000000000101 less its shard
    assert event.learner.account is not None
    assert event.learner.account.name == "1122"  # as course_progress names Ada
    assert event.assignment is not None
    assert event.assignment.type is AssignmentType.REQUIRED
    assert event.assignment.due_utc() is None  # Canvas documents no due date for an enrollment
    assert event.assignment.assigner is None
    assert event.assignment.assigned_at == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def test_the_enrollment_and_the_progress_in_its_course_name_the_same_learner_and_course() -> None:
    source = make_source("canvas", **ASSIGNING)
    [assigned] = source.read(delivery(enrollment("enrollment-created.json"), JWT)).events
    [progress] = source.read(delivery(signed("course-progress.json"), JWT)).events
    assert (assigned.course, assigned.learner) == (
        progress.course.model_copy(update={"title": None}),
        progress.learner,
    )


def test_the_sis_course_id_comes_from_the_metadata_context() -> None:
    source = make_source("canvas", courseId="sisSourceId", **ASSIGNING)
    [event] = source.read(delivery(enrollment("enrollment-created.json"), JWT)).events
    assert event.course.external_id == "AE-101"


@pytest.mark.parametrize("state", ["deleted", "inactive"])
def test_a_deleted_or_inactive_enrollment_withdraws_the_assignment(state: str) -> None:
    body = enrollment("enrollment-deleted.json", workflow_state=state)
    [event] = make_source("canvas", **ASSIGNING).read(delivery(body, JWT)).events
    assert event.assignment is not None
    assert event.assignment.withdrawn


@pytest.mark.parametrize(
    ("body", "reason"),
    [({"type": "TeacherEnrollment"}, "notAssignment"), ({"workflow_state": "completed"}, "eventNotProgress")],
)
def test_a_teacher_or_a_concluded_enrollment_is_ignored(body: dict[str, Any], reason: str) -> None:
    result = make_source("canvas", **ASSIGNING).read(
        delivery(enrollment("enrollment-created.json", **body), JWT)
    )
    assert (result.events, [i.reason for i in result.ignored]) == ([], [reason])


def test_enrollments_are_ignored_unless_the_source_assigns() -> None:
    result = make_source("canvas", jwks=JWKS, learner="account").read(
        delivery(enrollment("enrollment-created.json"), JWT)
    )
    assert (result.events, [i.reason for i in result.ignored]) == ([], ["eventNotProgress"])


def test_an_enrollment_names_no_email_so_the_learner_must_be_an_account() -> None:
    result = make_source("canvas", jwks=JWKS, assignments=True).read(
        delivery(enrollment("enrollment-created.json"), JWT)
    )
    assert [i.reason for i in result.ignored] == ["learnerMissing"]
