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
"not yet" (a user provisioned tomorrow, a course synced tonight).
"""

from __future__ import annotations

from collections.abc import Mapping

from cachetools import TTLCache

from shared.delivery.exceptions import PermanentFailure
from shared.events.model import Learner
from shared.graph.gateway import LearningGraph

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
        self._users: TTLCache[str, str] = TTLCache(maxsize=_CACHE_SIZE, ttl=ttl_seconds)
        self._contents: TTLCache[str, str] = TTLCache(maxsize=_CACHE_SIZE, ttl=ttl_seconds)

    async def learner_user_id(self, learner: Learner, source: str) -> str:
        key = f"{source}\x1f{learner.identity_key()}"
        cached = self._users.get(key)
        if cached is not None:
            return cached
        user_id = await self._look_up(learner, source)
        if user_id is None:
            raise PermanentFailure("learnerNotFound", f"No Entra user matches the learner's {learner.kind}.")
        self._users[key] = user_id
        return user_id

    async def _look_up(self, learner: Learner, source: str) -> str | None:
        if learner.user_id is not None:
            return await self._graph.find_user_id_by_upn(str(learner.user_id))  # /users/{id | upn}
        if learner.upn is not None:
            return await self._graph.find_user_id_by_upn(learner.upn)
        if learner.email is not None:
            return (
                await self._graph.find_user_id_by("mail", learner.email)
                or await self._graph.find_user_id_by_upn(learner.email)
                or await self._graph.find_user_id_by("otherMails", learner.email)
            )
        assert learner.account is not None
        attribute = self._account_attributes.get(source)
        if attribute is None:
            raise PermanentFailure(
                "learnerNotResolvable",
                f"Source {source!r} identifies learners by a platform account; set its "
                "accountAttribute option (e.g. employeeId) to say which Entra attribute holds it.",
            )
        return await self._graph.find_user_id_by(attribute, learner.account.name)

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
