"""xAPI statement validation as an LRS does it: xAPI 1.0.3 (Data part), with 2.0's differences.

An endpoint that answers as an LRS must refuse what an LRS refuses, so a statement is checked against
the spec's rules before the bridge reads anything from it: which properties each object may have, the
types and formats of their values (UUIDs, IRIs, mailto IRIs, language maps, ISO 8601 timestamps and
durations, scores in range), Agent/Group identification (exactly one identifier), SubStatement and
StatementRef limits, and no `null` outside extensions. Every problem is a JSON Pointer into the
statement with what is wrong there; the xAPI format prefixes it with the statement's place in the body.

Hand-written rather than a JSON Schema: the rules depend on each other (one of four identifiers, a
Group's members only when anonymous, `revision` only with an Activity object, raw between min and
max) and the ADL conformance suite's cases (devtools.adl_conformance) are the measure of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.sources.exceptions import FieldProblem

# Every pattern is used with fullmatch (Python's `$` also matches before a final "\n") and those with
# `\d` are ASCII-only (`\d` alone matches any Unicode digit, which no xAPI value may hold).
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+")
_MAILTO = re.compile(r"mailto:[^@\s]+@[^@\s]+")
_SHA1 = re.compile(r"[0-9a-fA-F]{40}")
_LANGUAGE = re.compile(r"(?:[A-Za-z]{2,8}|[xXiI])(?:-[A-Za-z0-9]{1,8})*")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?"
    r"(?P<zone>Z|[+-](?P<zone_hour>\d{2})(?::?(?P<zone_minute>\d{2}))?)?",
    re.ASCII,
)
# ISO 8601 durations: PnYnMnDTnHnMnS (any part may be left out) or PnW alone.
_DURATION = re.compile(
    r"P(?:\d+(?:\.\d+)?W|(?!\Z)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?)",
    re.ASCII,
)
_NEGATIVE_ZERO_OFFSET = re.compile(r"-00(?::?00)?\Z")
INTERACTION_TYPES = frozenset(
    {
        "true-false",
        "choice",
        "fill-in",
        "long-fill-in",
        "matching",
        "performance",
        "sequencing",
        "likert",
        "numeric",
        "other",
    }
)
_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")
_CONTEXT_ACTIVITY_KEYS = frozenset({"parent", "grouping", "category", "other"})
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


@dataclass
class _Check:
    """One statement's walk: where we are (a JSON Pointer) and what was found wrong."""

    version2: bool
    problems: list[FieldProblem] = field(default_factory=list)

    def fail(self, pointer: str, detail: str) -> None:
        self.problems.append(FieldProblem(pointer or "/", detail))


def statement_problems(statement: Any, version2: bool) -> list[FieldProblem]:
    """Everything an LRS would refuse in one statement (pointers relative to the statement)."""
    check = _Check(version2)
    _statement(check, statement, "", sub=False)
    return check.problems


# ---- small value checks ------------------------------------------------------------------------------


def _pointer(base: str, key: str | int) -> str:
    return f"{base}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _object(
    check: _Check, value: Any, where: str, allowed: frozenset[str], required: tuple[str, ...] = ()
) -> bool:
    """A JSON object with only `allowed` keys, the `required` ones present, and no null values."""
    if not isinstance(value, dict):
        check.fail(where, "must be an object")
        return False
    for key, item in value.items():
        if key not in allowed:
            check.fail(_pointer(where, key), "is not a property xAPI allows here")
        elif item is None:
            check.fail(_pointer(where, key), "must not be null")
    for key in required:
        if key not in value:
            check.fail(_pointer(where, key), "is required")
    return True


def _string(
    check: _Check, value: Any, where: str, pattern: re.Pattern[str] | None = None, what: str = ""
) -> bool:
    if not isinstance(value, str):
        check.fail(where, "must be a string")
        return False
    if pattern is not None and not pattern.fullmatch(value):
        check.fail(where, f"must be {what}")
        return False
    return True


def _iri(check: _Check, value: Any, where: str) -> None:
    _string(check, value, where, _IRI, "an absolute IRI")


def _uuid(check: _Check, value: Any, where: str) -> None:
    _string(check, value, where, _UUID, "a UUID")


def _bool(check: _Check, value: Any, where: str) -> None:
    if not isinstance(value, bool):
        check.fail(where, "must be true or false")


def _number(check: _Check, value: Any, where: str) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        check.fail(where, "must be a number")
        return False
    return True


def _language_map(check: _Check, value: Any, where: str) -> None:
    if not isinstance(value, dict):
        check.fail(where, "must be a language map (an object of language tags to strings)")
        return
    for tag, text in value.items():
        if not _LANGUAGE.fullmatch(tag):
            check.fail(_pointer(where, tag), "is not an RFC 5646 language tag")
        elif not isinstance(text, str):
            check.fail(_pointer(where, tag), "must be a string")


def _extensions(check: _Check, value: Any, where: str) -> None:
    if not isinstance(value, dict):
        check.fail(where, "must be an object whose keys are IRIs")
        return
    for key in value:
        if not _IRI.fullmatch(key):
            check.fail(_pointer(where, key), "an extension key must be an absolute IRI")


def _timestamp(check: _Check, value: Any, where: str) -> None:
    """The pattern checks the shape; the ranges (day of month, hour, minute, second, offset) are checked
    here, since a pattern of digits lets through 10:00:99 or +99:99, which no LRS stores."""
    if not _string(check, value, where, _TIMESTAMP, "an ISO 8601 timestamp"):
        return
    if _NEGATIVE_ZERO_OFFSET.search(value):
        check.fail(where, "a zero offset must be Z or +00:00, not -00:00 (RFC 3339)")
        return
    parts = _TIMESTAMP.fullmatch(value)
    assert parts is not None  # _string just matched it
    try:
        datetime.fromisoformat(value[:10])
    except ValueError:
        check.fail(where, "is not a calendar date")
        return
    second = int(parts["second"] or 0)
    if int(parts["hour"]) > 23 or int(parts["minute"]) > 59 or second > 59:
        check.fail(where, "is not a time of day")
    elif int(parts["zone_hour"] or 0) > 23 or int(parts["zone_minute"] or 0) > 59:
        check.fail(where, "is not a UTC offset (hours 00-23, minutes 00-59)")


# ---- actors --------------------------------------------------------------------------------------------

_AGENT_KEYS = frozenset({"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"})
_GROUP_KEYS = _AGENT_KEYS | {"member"}
_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")


def _actor(check: _Check, value: Any, where: str, group_only: bool = False, agent_only: bool = False) -> None:
    kind = value.get("objectType", "Agent") if isinstance(value, dict) else None
    if kind == "Group" and not agent_only:
        _group(check, value, where)
    elif kind == "Agent" and not group_only:
        _agent(check, value, where)
    elif isinstance(value, dict):
        expected = "Group" if group_only else "Agent" if agent_only else "Agent or Group"
        check.fail(_pointer(where, "objectType"), f"must be {expected}")
    else:
        check.fail(where, "must be an Agent or Group object")


def _identifiers(check: _Check, value: dict[str, Any], where: str) -> int:
    present = [key for key in _IFIS if key in value]
    for key in present:
        at = _pointer(where, key)
        if key == "mbox":
            _string(check, value[key], at, _MAILTO, "a mailto: IRI with an email address")
        elif key == "mbox_sha1sum":
            _string(check, value[key], at, _SHA1, "a SHA-1 hex digest")
        elif key == "openid":
            _iri(check, value[key], at)
        elif _object(check, value[key], at, frozenset({"homePage", "name"}), ("homePage", "name")):
            if "homePage" in value[key]:
                _iri(check, value[key]["homePage"], _pointer(at, "homePage"))
            if "name" in value[key]:
                _string(check, value[key]["name"], _pointer(at, "name"))
    return len(present)


def _agent(check: _Check, value: dict[str, Any], where: str) -> None:
    _object(check, value, where, _AGENT_KEYS)
    if "name" in value:
        _string(check, value["name"], _pointer(where, "name"))
    if _identifiers(check, value, where) != 1:
        check.fail(where, "an Agent needs exactly one of mbox, mbox_sha1sum, openid, account")


def _group(check: _Check, value: dict[str, Any], where: str) -> None:
    _object(check, value, where, _GROUP_KEYS)
    if "name" in value:
        _string(check, value["name"], _pointer(where, "name"))
    identified = _identifiers(check, value, where)
    if identified > 1:
        check.fail(where, "a Group has at most one of mbox, mbox_sha1sum, openid, account")
    members = value.get("member")
    if "member" in value:
        if not isinstance(members, list):
            check.fail(_pointer(where, "member"), "must be an array of Agents")
            return
        for index, member in enumerate(members):
            _actor(check, member, _pointer(_pointer(where, "member"), index), agent_only=True)
    if identified == 0 and not members:
        check.fail(where, "an anonymous Group needs its members")


# ---- objects -----------------------------------------------------------------------------------------

_DEFINITION_KEYS = frozenset(
    {
        "name",
        "description",
        "type",
        "moreInfo",
        "extensions",
        "interactionType",
        "correctResponsesPattern",
        *_COMPONENT_LISTS,
    }
)


def _activity(check: _Check, value: Any, where: str) -> None:
    if not _object(check, value, where, frozenset({"objectType", "id", "definition"}), ("id",)):
        return
    if "id" in value:
        _iri(check, value["id"], _pointer(where, "id"))
    if value.get("objectType", "Activity") != "Activity":
        check.fail(_pointer(where, "objectType"), "must be Activity")
    if "definition" in value:
        _definition(check, value["definition"], _pointer(where, "definition"))


def _definition(check: _Check, value: Any, where: str) -> None:
    if not _object(check, value, where, _DEFINITION_KEYS):
        return
    for key in ("name", "description"):
        if key in value:
            _language_map(check, value[key], _pointer(where, key))
    for key in ("type", "moreInfo"):
        if key in value:
            _iri(check, value[key], _pointer(where, key))
    if "extensions" in value:
        _extensions(check, value["extensions"], _pointer(where, "extensions"))
    interaction = value.get("interactionType")
    if "interactionType" in value and not (isinstance(interaction, str) and interaction in INTERACTION_TYPES):
        check.fail(_pointer(where, "interactionType"), "is not an xAPI interaction type")
    pattern = value.get("correctResponsesPattern")
    if "correctResponsesPattern" in value and not (
        isinstance(pattern, list) and all(isinstance(p, str) for p in pattern)
    ):
        check.fail(_pointer(where, "correctResponsesPattern"), "must be an array of strings")
    for key in _COMPONENT_LISTS:
        if key in value:
            _components(check, value[key], _pointer(where, key))


def _components(check: _Check, value: Any, where: str) -> None:
    if not isinstance(value, list):
        check.fail(where, "must be an array of interaction components")
        return
    seen: set[str] = set()
    for index, component in enumerate(value):
        at = _pointer(where, index)
        if _object(check, component, at, frozenset({"id", "description"}), ("id",)):
            if _string(check, component.get("id"), _pointer(at, "id")) and component["id"] in seen:
                check.fail(_pointer(at, "id"), "repeats another component's id")
            seen.add(str(component.get("id")))
            if "description" in component:
                _language_map(check, component["description"], _pointer(at, "description"))


def _statement_ref(check: _Check, value: dict[str, Any], where: str) -> None:
    _object(check, value, where, frozenset({"objectType", "id"}), ("objectType", "id"))
    if "id" in value:
        _uuid(check, value["id"], _pointer(where, "id"))


def _object_property(check: _Check, value: Any, where: str, sub: bool) -> None:
    kind = value.get("objectType", "Activity") if isinstance(value, dict) else None
    if not isinstance(value, dict):
        check.fail(where, "must be an Activity, Agent, Group, StatementRef or SubStatement")
    elif kind == "Activity":
        _activity(check, value, where)
    elif kind in ("Agent", "Group"):
        _actor(check, value, where)
    elif kind == "StatementRef":
        _statement_ref(check, value, where)
    elif kind == "SubStatement" and not sub:
        _statement(check, value, where, sub=True)
    elif kind == "SubStatement":
        check.fail(_pointer(where, "objectType"), "a SubStatement cannot contain another SubStatement")
    else:
        check.fail(_pointer(where, "objectType"), "is not an xAPI object type")


# ---- result, context, attachments ------------------------------------------------------------------


def _result(check: _Check, value: Any, where: str) -> None:
    keys = frozenset({"score", "success", "completion", "response", "duration", "extensions"})
    if not _object(check, value, where, keys):
        return
    for key in ("success", "completion"):
        if key in value:
            _bool(check, value[key], _pointer(where, key))
    if "response" in value:
        _string(check, value["response"], _pointer(where, "response"))
    if "duration" in value:
        _string(check, value["duration"], _pointer(where, "duration"), _DURATION, "an ISO 8601 duration")
    if "extensions" in value:
        _extensions(check, value["extensions"], _pointer(where, "extensions"))
    if "score" in value:
        _score(check, value["score"], _pointer(where, "score"))


def _score(check: _Check, value: Any, where: str) -> None:
    if not _object(check, value, where, frozenset({"scaled", "raw", "min", "max"})):
        return
    numbers = {
        k: v
        for k, v in value.items()
        if k in ("scaled", "raw", "min", "max") and _number(check, v, _pointer(where, k))
    }
    if "scaled" in numbers and not -1 <= numbers["scaled"] <= 1:
        check.fail(_pointer(where, "scaled"), "must be from -1 to 1")
    low, high, raw = numbers.get("min"), numbers.get("max"), numbers.get("raw")
    if low is not None and high is not None and low >= high:
        check.fail(_pointer(where, "min"), "must be less than max")
    if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
        check.fail(_pointer(where, "raw"), "must be between min and max")


def _context(check: _Check, value: Any, where: str, object_is_activity: bool) -> None:
    keys = {
        "registration",
        "instructor",
        "team",
        "contextActivities",
        "revision",
        "platform",
        "language",
        "statement",
        "extensions",
    }
    if check.version2:
        keys |= {"contextAgents", "contextGroups"}
    if not _object(check, value, where, frozenset(keys)):
        return
    if "registration" in value:
        _uuid(check, value["registration"], _pointer(where, "registration"))
    if "instructor" in value:
        _actor(check, value["instructor"], _pointer(where, "instructor"))
    if "team" in value:
        _actor(check, value["team"], _pointer(where, "team"), group_only=True)
    for key in ("revision", "platform"):
        if key in value:
            _string(check, value[key], _pointer(where, key))
            if not object_is_activity:
                check.fail(_pointer(where, key), "is only allowed when the object is an Activity")
    if "language" in value:
        _string(check, value["language"], _pointer(where, "language"), _LANGUAGE, "an RFC 5646 language tag")
    if "statement" in value:
        at = _pointer(where, "statement")
        if isinstance(value["statement"], dict) and value["statement"].get("objectType") == "StatementRef":
            _statement_ref(check, value["statement"], at)
        else:
            check.fail(at, "must be a StatementRef")
    if "extensions" in value:
        _extensions(check, value["extensions"], _pointer(where, "extensions"))
    if "contextActivities" in value:
        _context_activities(check, value["contextActivities"], _pointer(where, "contextActivities"))
    _context_agents(check, value, where)


def _context_activities(check: _Check, value: Any, where: str) -> None:
    if not _object(check, value, where, _CONTEXT_ACTIVITY_KEYS):
        return
    for key, activities in value.items():
        if key not in _CONTEXT_ACTIVITY_KEYS or activities is None:
            continue
        at = _pointer(where, key)
        if isinstance(activities, list):
            for index, activity in enumerate(activities):
                _activity(check, activity, _pointer(at, index))
        else:
            _activity(check, activities, at)


def _context_agents(check: _Check, value: dict[str, Any], where: str) -> None:
    """xAPI 2.0: contextAgents [{objectType: contextAgent, agent, relevantTypes}], contextGroups alike."""
    for key, member, kind in (
        ("contextAgents", "agent", "contextAgent"),
        ("contextGroups", "group", "contextGroup"),
    ):
        if key not in value:
            continue
        at = _pointer(where, key)
        items = value[key]
        if not isinstance(items, list):
            check.fail(at, "must be an array")
            continue
        for index, item in enumerate(items):
            item_at = _pointer(at, index)
            if not _object(
                check,
                item,
                item_at,
                frozenset({"objectType", member, "relevantTypes"}),
                ("objectType", member),
            ):
                continue
            if item.get("objectType") != kind:
                check.fail(_pointer(item_at, "objectType"), f"must be {kind}")
            if member in item:
                _actor(
                    check,
                    item[member],
                    _pointer(item_at, member),
                    group_only=member == "group",
                    agent_only=member == "agent",
                )
            types = item.get("relevantTypes")
            if "relevantTypes" in item and not (
                isinstance(types, list)
                and types
                and all(isinstance(t, str) and _IRI.fullmatch(t) for t in types)
            ):
                check.fail(_pointer(item_at, "relevantTypes"), "must be a non-empty array of IRIs")


def _attachments(check: _Check, value: Any, where: str) -> None:
    if not isinstance(value, list):
        check.fail(where, "must be an array of attachments")
        return
    keys = frozenset({"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"})
    for index, attachment in enumerate(value):
        at = _pointer(where, index)
        if not _object(
            check, attachment, at, keys, ("usageType", "display", "contentType", "length", "sha2")
        ):
            continue
        for key, rule in _ATTACHMENT_RULES.items():
            if key in attachment:
                rule(check, attachment[key], _pointer(at, key))
        if "fileUrl" not in attachment:
            # Without a fileUrl the content must come in a multipart/mixed body; this is JSON only.
            check.fail(
                _pointer(at, "fileUrl"), "is required: attachment content cannot travel in a JSON body"
            )


def _text(check: _Check, value: Any, where: str) -> None:
    _string(check, value, where)


def _length(check: _Check, value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        check.fail(where, "must be a non-negative integer")


_ATTACHMENT_RULES: Mapping[str, Callable[[_Check, Any, str], None]] = {
    "usageType": _iri,
    "display": _language_map,
    "description": _language_map,
    "contentType": _text,
    "length": _length,
    "sha2": _text,
    "fileUrl": _iri,
}


# ---- the statement -----------------------------------------------------------------------------------

_STATEMENT_KEYS = frozenset(
    {
        "id",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "stored",
        "authority",
        "version",
        "attachments",
    }
)
_SUBSTATEMENT_KEYS = frozenset(
    {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}
)


def _statement(check: _Check, value: Any, where: str, sub: bool) -> None:
    allowed = _SUBSTATEMENT_KEYS if sub else _STATEMENT_KEYS
    if not _object(check, value, where, allowed, ("actor", "verb", "object")):
        return
    if "id" in value:
        _uuid(check, value["id"], _pointer(where, "id"))
    if "actor" in value:
        _actor(check, value["actor"], _pointer(where, "actor"))
    if "verb" in value:
        _verb(check, value["verb"], _pointer(where, "verb"))
    if "object" in value:
        _object_property(check, value["object"], _pointer(where, "object"), sub)
    obj = value.get("object")
    is_activity = isinstance(obj, dict) and obj.get("objectType", "Activity") == "Activity"
    if "result" in value:
        _result(check, value["result"], _pointer(where, "result"))
    if "context" in value:
        _context(check, value["context"], _pointer(where, "context"), is_activity)
    for key in ("timestamp", "stored"):
        if key in value:
            _timestamp(check, value[key], _pointer(where, key))
    if "authority" in value:
        _authority(check, value["authority"], _pointer(where, "authority"))
    if "version" in value:
        at = _pointer(where, "version")
        valid = _string(check, value["version"], at, _VERSION, "1.0.x or 2.0.x")
        # xAPI 1.0.3 (Data 2.4.10): a 1.0.x LRS MUST reject a statement whose version does not start
        # with 1.0.
        if valid and not check.version2 and not value["version"].startswith("1.0"):
            check.fail(at, "must be 1.0.x under X-Experience-API-Version 1.0.x")
    if "attachments" in value:
        _attachments(check, value["attachments"], _pointer(where, "attachments"))
    voiding = isinstance(value.get("verb"), dict) and value["verb"].get("id") == VOIDED
    if voiding and not (isinstance(obj, dict) and obj.get("objectType") == "StatementRef"):
        check.fail(_pointer(where, "object"), "a voiding statement's object must be a StatementRef")


def _authority(check: _Check, value: Any, where: str) -> None:
    """An Agent, or (OAuth 1.0) an anonymous Group of exactly two Agents: the application and the user."""
    _actor(check, value, where)
    if isinstance(value, dict) and value.get("objectType") == "Group":
        members = value.get("member")
        if any(key in value for key in _IFIS) or not isinstance(members, list) or len(members) != 2:
            check.fail(where, "an authority Group must be anonymous with exactly two members")


_VERSION = re.compile(r"(?:1\.0(?:\.\d+)?|2\.0(?:\.\d+)?)", re.ASCII)


def _verb(check: _Check, value: Any, where: str) -> None:
    if not _object(check, value, where, frozenset({"id", "display"}), ("id",)):
        return
    if "id" in value:
        _iri(check, value["id"], _pointer(where, "id"))
    if "display" in value:
        _language_map(check, value["display"], _pointer(where, "display"))
