"""Graph failures, split the way the queue needs them: worth retrying, or not; and the learning API's
documented answers recognised by their messages.

The learning API documents its answers in "Error Responses in the LearningCourseActivity API"
(microsoft-graph-docs-contrib, api-reference/v1.0/resources/learningcourseactivity-error-codes.md):
throttling and unavailability name their wait in the message, in minutes ("Retry after
{noOfMinutes} minutes", no Retry-After header documented), and the licence, plan, provider and content
refusals are told apart only by their message. The page spells some of them two ways (the create table
"isn't", the update table "is not"; "an adequate service plan" and "a service plan adequate"), and its
create table puts two messages in the Code column: both spellings are recognised, in either field, and
nothing else is (an unknown answer keeps its status-based reason).
"""

from __future__ import annotations

import re
from typing import Final

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: The statuses whose documented message names the wait ("Request throttled", "Service unavailable").
HINTED_STATUSES = frozenset({429, 503})
_MINUTES = re.compile(r"retry after (\d{1,6}) minutes?", re.IGNORECASE)

#: A learner without a Viva Learning licence: parked, since a licence is usually on its way.
LEARNER_NOT_LICENSED: Final = "learnerNotLicensed"
#: The tenant has no plan that includes Viva Learning: every write fails until an admin adds one.
TENANT_NOT_LICENSED: Final = "tenantNotLicensed"
#: The provider's course activity sync is off: every write fails until it is turned on.
PROVIDER_NOT_ENABLED: Final = "providerNotEnabled"
#: The learning content was created by another provider than the one writing.
CONTENT_OF_ANOTHER_PROVIDER: Final = "contentOfAnotherProvider"
#: The registration id in the URL names no provider registered for the tenant (a typo, another
#: tenant's id, a provider deleted since): every write fails until the setting names a registered one.
PROVIDER_NOT_REGISTERED: Final = "providerNotRegistered"
#: The caller's token lacks the permission for course activities (for the bridge: its identity lacks
#: the app role): every write fails until an administrator grants it.
APP_ROLE_MISSING: Final = "appRoleMissing"

#: (status, reason) -> the documented messages, as `_normal` writes them.
_DOCUMENTED: Final[dict[tuple[int, str], frozenset[str]]] = {
    # Create: "User License isn't valid to perform the operation" (in the Code column); Update: "The
    # user license is not valid to perform the operation"; the issue and the docs' prose: "The user
    # license isn't valid to perform the operation".
    (403, LEARNER_NOT_LICENSED): frozenset(
        {
            "the user license isn't valid to perform the operation",
            "user license isn't valid to perform the operation",
        }
    ),
    # Create, Get, Update: "You don't have an adequate service plan for this request."; Delete: "You
    # don't have a service plan adequate for this request."
    (403, TENANT_NOT_LICENSED): frozenset(
        {
            "you don't have an adequate service plan for this request",
            "you don't have a service plan adequate for this request",
        }
    ),
    # Create (in the Code column) and Update ("is not").
    (403, CONTENT_OF_ANOTHER_PROVIDER): frozenset(
        {"the provider isn't valid to create course activity for the given learning content"}
    ),
    # Create, Delete, Get, Update.
    (400, PROVIDER_NOT_ENABLED): frozenset({"this provider isn't enabled for the given tenant"}),
    # Delete, Update ("User doesn't have the appropriate permissions scope"): "Your account doesn't have
    # access to this report or data. Please contact your global administrator to request access."; Get
    # drops a word ("Your account doesn't access to this report or data...").
    (403, APP_ROLE_MISSING): frozenset(
        {
            "your account doesn't have access to this report or data. please contact your global "
            "administrator to request access",
            "your account doesn't access to this report or data. please contact your global "
            "administrator to request access",
        }
    ),
    # Create, Delete, Get, Update: "There was an issue with your request. Make sure the registrationId
    # you entered is valid or registered for your tenant" (with and without the final full stop).
    (400, PROVIDER_NOT_REGISTERED): frozenset(
        {
            "there was an issue with your request. make sure the registrationid you entered is valid or "
            "registered for your tenant",
            "make sure the registrationid you entered is valid or registered for your tenant",
        }
    ),
}


class GraphError(Exception):
    """Graph answered with an error. `code` and `message` are Graph's own (they carry no secrets).

    `retry_after` (seconds) is the Retry-After header when the answer had one; without it, for 429
    and 503, the wait the documented message names ("Retry after 2 minutes": 120)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"Graph {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after if retry_after is not None else hinted_wait(status, message)

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUSES

    @property
    def documented_reason(self) -> str | None:
        """The reason of a documented learning API answer (`LEARNER_NOT_LICENSED`, ...), else None."""
        return documented_reason(self.status, self.code, self.message)


class GraphUnavailable(Exception):
    """Graph could not be reached or did not answer in time (network error, timeout)."""


def hinted_wait(status: int, message: str) -> float | None:
    """Seconds from a 429 or 503 message "Retry after {noOfMinutes} minutes" (the whole message, with
    or without a final full stop), else None."""
    if status not in HINTED_STATUSES:
        return None
    found = _MINUTES.fullmatch(message.strip().rstrip("."))
    return 60.0 * int(found.group(1)) if found else None


def documented_reason(status: int, code: str, message: str) -> str | None:
    said = {_normal(code), _normal(message)}
    for (documented_status, reason), messages in _DOCUMENTED.items():
        if status == documented_status and said & messages:
            return reason
    return None


def _normal(text: str) -> str:
    """Case, spacing, the final full stop, typographic apostrophes and "is not" / "isn't" aside."""
    text = " ".join(text.replace("\u2019", "'").split()).casefold().rstrip(".").strip()
    return re.sub(r"\bis not\b", "isn't", text)
