"""Turning the source's names for things into Graph ids: learner -> Entra object id, course -> content id.

How a learner is found depends on how the source names them:
- `userId`: the Entra object id, checked with `GET /users/{id}` (a user not in Entra yet is parked like
  any other unknown learner, instead of failing the POST);
- `upn`: `GET /users/{upn}`;
- `email`: the user whose `mail` is it, else whose `userPrincipalName` is it, else whose `otherMails`
  contain it (many tenants give users mail == UPN, some keep old addresses in otherMails);
- `account`: the user whose configured attribute (the source's `accountAttribute`, e.g. `employeeId`)
  equals the account name; without that option the learner is not resolvable (never guessed).

Found ids are cached per worker (they do not change); misses are not, because "not found" is usually
"not yet" (a user provisioned tomorrow, a course synced tonight). `resolve_learner` also says how the
learner was found ("email (mail)", "account (employeeId)"...): the event's delivery row keeps it for
`trace`. It names the kind of identifier and the attribute that matched, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping

from cachetools import TTLCache

from shared.delivery.exceptions import PermanentFailure
from shared.events.model import Learner
from shared.graph.gateway import LearningGraph

#: The reason of a learner (or assigner) Entra does not know.
LEARNER_NOT_FOUND = "learnerNotFound"

_CACHE_SIZE = 50_000
_CACHE_SECONDS = 3600


class Resolver:
    def __init__(
        self,
        graph: LearningGraph,
        account_attributes: Mapping[str, str] | None = None,
        ttl_seconds: float = _CACHE_SECONDS,
    ) -> None:
        self._graph = graph
        self._account_attributes = dict(account_attributes or {})
        self._users: TTLCache[str, tuple[str, str]] = TTLCache(maxsize=_CACHE_SIZE, ttl=ttl_seconds)
        self._contents: TTLCache[str, str] = TTLCache(maxsize=_CACHE_SIZE, ttl=ttl_seconds)

    async def learner_user_id(self, learner: Learner, source: str) -> str:
        return (await self.resolve_learner(learner, source))[0]

    async def resolve_learner(self, learner: Learner, source: str) -> tuple[str, str]:
        """The learner's Entra object id, and how it was found: "userId", "upn", "email (mail)",
        "email (userPrincipalName)", "email (otherMails)" or "account (<attribute>)"."""
        key = f"{source}\x1f{learner.identity_key()}"
        cached = self._users.get(key)
        if cached is not None:
            return cached
        found = await self._look_up(learner, source)
        if found is None:
            raise PermanentFailure(LEARNER_NOT_FOUND, f"No Entra user matches the learner's {learner.kind}.")
        self._users[key] = found
        return found

    async def _look_up(self, learner: Learner, source: str) -> tuple[str, str] | None:
        user_id: str | None
        if learner.user_id is not None:
            user_id = await self._graph.find_user_id_by_upn(str(learner.user_id))  # /users/{id | upn}
            return (user_id, "userId") if user_id else None
        if learner.upn is not None:
            user_id = await self._graph.find_user_id_by_upn(learner.upn)
            return (user_id, "upn") if user_id else None
        if learner.email is not None:
            if user_id := await self._graph.find_user_id_by("mail", learner.email):
                return user_id, "email (mail)"
            if user_id := await self._graph.find_user_id_by_upn(learner.email):
                return user_id, "email (userPrincipalName)"
            user_id = await self._graph.find_user_id_by("otherMails", learner.email)
            return (user_id, "email (otherMails)") if user_id else None
        assert learner.account is not None
        attribute = self._account_attributes.get(source)
        if attribute is None:
            raise PermanentFailure(
                "learnerNotResolvable",
                f"Source {source!r} identifies learners by a platform account; set its "
                "accountAttribute option (e.g. employeeId) to say which Entra attribute holds it.",
            )
        user_id = await self._graph.find_user_id_by(attribute, learner.account.name)
        return (user_id, f"account ({attribute})") if user_id else None

    async def content_id(self, external_id: str) -> str:
        cached = self._contents.get(external_id)
        if cached is not None:
            return cached
        content_id = await self._graph.find_content_id(external_id)
        if content_id is None:
            raise PermanentFailure(
                "contentNotFound",
                f"No Viva Learning content has externalId {external_id!r} for this provider.",
            )
        self._contents[external_id] = content_id
        return content_id
