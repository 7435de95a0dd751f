"""Rules every format keeps, checked on each."""

import pytest

from shared.config.settings import SourceSettings
from shared.sources import InvalidPayload, SourceFormat
from shared.sources.registry import FORMATS, build_source
from tests.builders import FIXTURES, delivery

SAMPLES = {
    "generic": FIXTURES.parent.parent / "samples/generic/progress-batch.json",
    "xapi": FIXTURES / "xapi/lrs-forwarding-envelope.json",
    "caliper": FIXTURES / "caliper/envelope-mixed.json",
    "thinkific": FIXTURES / "thinkific/enrollment-progress.json",
    "canvas": FIXTURES / "canvas/course-progress.json",
    "teachable": FIXTURES / "teachable/lecture-progress.json",
    "docebo": FIXTURES / "docebo/enrollment-completed-batch.json",
    "360learning": FIXTURES / "360learning/course-attempt-closed.json",
    "learnworlds": FIXTURES / "learnworlds/course-completed.json",
}


def parser(format_name: str) -> SourceFormat:
    options = {"auth": "token"} if format_name == "canvas" else {}
    return build_source(SourceSettings(name="s", format=format_name, options=options), offline=True)


def test_every_format_has_a_sample_here() -> None:
    assert set(SAMPLES) == set(FORMATS)


@pytest.mark.parametrize("format_name", sorted(SAMPLES))
def test_a_truncated_body_is_400_not_a_crash(format_name: str) -> None:
    body = SAMPLES[format_name].read_bytes()
    for cut in (1, len(body) // 2, len(body) - 2):
        with pytest.raises(InvalidPayload) as caught:
            parser(format_name).parse(delivery(body[:cut]))
        assert caught.value.status == 400


@pytest.mark.parametrize("format_name", sorted(SAMPLES))
@pytest.mark.parametrize("body", [b"", b"null", b"true", b'"text"', b"\xff\xfe", b"{}"])
def test_bodies_of_the_wrong_shape_are_400(format_name: str, body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        parser(format_name).parse(delivery(body))


@pytest.mark.parametrize("format_name", sorted(SAMPLES))
def test_the_same_delivery_always_gives_the_same_event_ids(format_name: str) -> None:
    body = SAMPLES[format_name].read_bytes()
    first, again = parser(format_name).parse(delivery(body)), parser(format_name).parse(delivery(body))
    assert [e.event_id for e in first.events] == [e.event_id for e in again.events]
    assert first.events, "every sample yields at least one event"
