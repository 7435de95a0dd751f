"""Which record an event addresses: one per source, learner (as Entra knows them) and course."""

from shared.events.identity import ActivityOwner, activity_id_for, derived_activity_id, owner_of
from shared.events.model import CanonicalEvent
from tests.builders import USER_ID, canonical, event

make = canonical  # a generic-source event, fields overridden


def test_one_person_named_by_email_or_upn_addresses_one_record() -> None:
    by_mail = make(learner={"email": "ada.lovelace@contoso.example"})
    by_upn = make(learner={"upn": "Ada.Lovelace@contoso.example"})
    assert activity_id_for(by_mail, USER_ID) == activity_id_for(by_upn, USER_ID.upper())


def test_the_derived_id_depends_on_source_learner_and_course_only() -> None:
    first = activity_id_for(make(eventId="a"), USER_ID)
    assert activity_id_for(make(eventId="b", status="completed", completionPercentage=None), USER_ID) == first
    assert activity_id_for(make(course={"externalId": "course-102"}), USER_ID) != first
    assert activity_id_for(make(), "another-user") != first
    other = CanonicalEvent.model_validate(event(source="other"))
    assert activity_id_for(other, USER_ID) != first


def test_the_derived_id_carries_no_personal_data() -> None:
    assert "ada" not in activity_id_for(make(), USER_ID)
    assert USER_ID not in derived_activity_id("generic", USER_ID, "course-101")


def test_a_senders_own_id_is_namespaced_by_its_source() -> None:
    mine = activity_id_for(make(externalCourseActivityId="enrolment-77"), USER_ID)
    theirs = activity_id_for(
        CanonicalEvent.model_validate(event(source="other", externalCourseActivityId="enrolment-77")), USER_ID
    )
    assert mine != theirs
    assert mine != "enrolment-77"


def test_a_source_with_shared_ids_uses_them_verbatim() -> None:
    shared = make(externalCourseActivityId="enrolment-77")
    assert activity_id_for(shared, USER_ID, shared_ids=True) == "enrolment-77"


def test_an_owner_admits_the_same_learner_and_course_from_any_source() -> None:
    owner = owner_of(make(), USER_ID)
    assert owner.admits(ActivityOwner("other", USER_ID.upper(), "course-101"))
    assert not owner.admits(ActivityOwner("generic", "someone-else", "course-101"))
    assert not owner.admits(ActivityOwner("generic", USER_ID, "course-102"))
