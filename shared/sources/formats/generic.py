"""The bridge's own format: canonical events as JSON, signed with Standard Webhooks.

Any platform or script can send it today. The body is one canonical event or an array of them; each
event's `source` may be left out (it is the URL's source) but must match it when given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError
from standardwebhooks.webhooks import Webhook

from shared.config.settings import SourceSettings
from shared.events.model import CanonicalEvent
from shared.sources.auth import StandardWebhooks, secrets
from shared.sources.base import (
    MAX_EVENTS_PER_DELIVERY,
    Delivery,
    ParseResult,
    SourceFormat,
    load_json,
    problems_from_validation,
)
from shared.sources.exceptions import FieldProblem, InvalidPayload

_EVENTS = TypeAdapter(list[CanonicalEvent])


class GenericFormat(SourceFormat):
    format_name: ClassVar[str] = "generic"

    def __init__(self, settings: SourceSettings, *, offline: bool = False) -> None:
        super().__init__(settings, offline=offline)
        self._verifier = None if offline else StandardWebhooks(self.secret, self.name)

    def verify(self, delivery: Delivery) -> None:
        assert self._verifier is not None  # built unless offline, and offline never verifies
        self._verifier.verify(delivery)

    def parse(self, delivery: Delivery) -> ParseResult:
        document = load_json(delivery.body)
        items: list[Any] = document if isinstance(document, list) else [document]
        if not items:
            raise InvalidPayload("The body is an empty array: send at least one event.")
        if len(items) > MAX_EVENTS_PER_DELIVERY:
            raise InvalidPayload(
                f"A delivery holds at most {MAX_EVENTS_PER_DELIVERY} events; this one has {len(items)}."
            )
        problems = []
        for index, item in enumerate(items):
            if isinstance(item, dict):
                given = item.setdefault("source", self.name)
                if given != self.name:
                    pointer = f"/{index}/source" if isinstance(document, list) else "/source"
                    problems.append(
                        FieldProblem(pointer, f"is {given!r} but the delivery is for {self.name!r}")
                    )
        try:
            events = _EVENTS.validate_python(items)
        except ValidationError as exc:
            problems += problems_from_validation(exc)
            if not isinstance(document, list):  # pointers into a single object have no index
                problems = [FieldProblem(_strip_index(p.pointer), p.detail) for p in problems]
        if problems:
            count = len(problems)
            raise InvalidPayload(
                f"{count} field{'s are' if count > 1 else ' is'} not valid; see errors.", problems
            )
        return ParseResult(events=events)


def signed_headers(body: bytes, secret: str, message_id: str, when: datetime) -> dict[str, str]:
    """The headers a sender of the generic format adds (used by the CLI's `send` and the tests).
    During a rotation (`old new` in the setting) it signs with the new secret."""
    secret = secrets(secret)[-1]
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, when, body.decode()),
    }


def _strip_index(pointer: str) -> str:
    return "/" + pointer.split("/", 2)[2] if pointer.count("/") >= 2 else "/"
