"""The sandbox's records, in SQLite: providers, users, learning contents, course activities.

Each record is its Graph JSON representation; the columns beside it are the keys Graph looks records up
by. Uniqueness that Graph enforces (one activity per external id within a provider) is a constraint
here, so a bridge that creates duplicates gets the 409 it would provoke in Graph.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS providers (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, upn TEXT NOT NULL UNIQUE, mail TEXT, employee_id TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contents (
    provider_id TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (provider_id, id), UNIQUE (provider_id, external_id));
CREATE TABLE IF NOT EXISTS unlicensed (user_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS tenant (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS activities (
    provider_id TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT, doc TEXT NOT NULL,
    PRIMARY KEY (provider_id, id), UNIQUE (provider_id, external_id));
"""

Doc = dict[str, Any]


class Conflict(Exception):
    pass


class Store:
    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def reset(self) -> None:
        for table in ("providers", "users", "contents", "activities", "unlicensed", "tenant"):
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    def _one(self, sql: str, *args: Any) -> Doc | None:
        row = self._db.execute(sql, args).fetchone()
        return json.loads(row[0]) if row else None

    def _all(self, sql: str, *args: Any) -> list[Doc]:
        return [json.loads(row[0]) for row in self._db.execute(sql, args).fetchall()]

    # providers
    def provider(self, provider_id: str) -> Doc | None:
        return self._one("SELECT doc FROM providers WHERE id = ?", provider_id)

    def put_provider(self, doc: Doc) -> Doc:
        doc.setdefault("id", str(uuid.uuid4()))
        self._db.execute(
            "INSERT OR REPLACE INTO providers (id, doc) VALUES (?, ?)", (doc["id"], json.dumps(doc))
        )
        return doc

    # users
    def user(self, id_or_upn: str) -> Doc | None:
        return self._one(
            "SELECT doc FROM users WHERE lower(id) = lower(?) OR lower(upn) = lower(?)",
            id_or_upn,
            id_or_upn,
        )

    def users_where(self, field: str, value: str, case_insensitive: bool) -> list[Doc]:
        """Users whose `field` equals `value`, or contains it when the field is a list (otherMails)."""

        def norm(text: Any) -> Any:
            return text.casefold() if case_insensitive and isinstance(text, str) else text

        def matches(doc: Doc) -> bool:
            found = doc.get(field)
            values = found if isinstance(found, list) else [found]
            return norm(value) in [norm(v) for v in values]

        return [doc for doc in self._all("SELECT doc FROM users ORDER BY rowid") if matches(doc)]

    def add_user(self, doc: Doc) -> Doc:
        doc.setdefault("id", str(uuid.uuid4()))
        try:
            self._db.execute(
                "INSERT INTO users (id, upn, mail, employee_id, doc) VALUES (?, ?, ?, ?, ?)",
                (
                    doc["id"],
                    doc["userPrincipalName"],
                    doc.get("mail"),
                    doc.get("employeeId"),
                    json.dumps(doc),
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict("A user with this id or userPrincipalName already exists.") from None
        return doc

    def delete_user(self, id_or_upn: str) -> bool:
        """False when no user has that id or userPrincipalName."""
        deleted = self._db.execute(
            "DELETE FROM users WHERE lower(id) = lower(?) OR lower(upn) = lower(?)", (id_or_upn, id_or_upn)
        )
        return deleted.rowcount > 0

    # licences and the tenant's plan (not Graph records: the sandbox's control sets them, and every
    # user is licensed and the tenant has its plan until it says otherwise)
    def licensed(self, user_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM unlicensed WHERE lower(user_id) = lower(?)", (user_id,))
        return row.fetchone() is None

    def set_licensed(self, user_id: str, licensed: bool) -> None:
        if licensed:
            self._db.execute("DELETE FROM unlicensed WHERE lower(user_id) = lower(?)", (user_id,))
        else:
            self._db.execute("INSERT OR IGNORE INTO unlicensed (user_id) VALUES (?)", (user_id,))

    def unlicensed(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT user_id FROM unlicensed ORDER BY user_id")]

    def has_service_plan(self) -> bool:
        row = self._db.execute("SELECT value FROM tenant WHERE name = 'servicePlan'").fetchone()
        return row is None or bool(json.loads(row[0]))

    def set_service_plan(self, has_plan: bool) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO tenant (name, value) VALUES ('servicePlan', ?)", (json.dumps(has_plan),)
        )

    # learning contents
    def content_provider(self, content_id: str) -> str | None:
        """The provider a learning content was created under, whichever it is; None if none has it."""
        row = self._db.execute("SELECT provider_id FROM contents WHERE id = ?", (content_id,)).fetchone()
        return str(row[0]) if row else None

    def content(
        self, provider_id: str, *, id: str | None = None, external_id: str | None = None
    ) -> Doc | None:
        if id is not None:
            return self._one("SELECT doc FROM contents WHERE provider_id = ? AND id = ?", provider_id, id)
        return self._one(
            "SELECT doc FROM contents WHERE provider_id = ? AND external_id = ?", provider_id, external_id
        )

    def contents(self, provider_id: str) -> list[Doc]:
        return self._all("SELECT doc FROM contents WHERE provider_id = ? ORDER BY rowid", provider_id)

    def put_content(self, provider_id: str, doc: Doc) -> Doc:
        self._db.execute(
            "INSERT OR REPLACE INTO contents (provider_id, id, external_id, doc) VALUES (?, ?, ?, ?)",
            (provider_id, doc["id"], doc["externalId"], json.dumps(doc)),
        )
        return doc

    # course activities
    def activity(
        self, provider_id: str, *, id: str | None = None, external_id: str | None = None
    ) -> Doc | None:
        if id is not None:
            return self._one("SELECT doc FROM activities WHERE provider_id = ? AND id = ?", provider_id, id)
        return self._one(
            "SELECT doc FROM activities WHERE provider_id = ? AND external_id = ?",
            provider_id,
            external_id,
        )

    def activity_by_id(self, id: str) -> Doc | None:
        """A course activity by its id, whichever provider wrote it (Get by id is not provider-scoped)."""
        return self._one("SELECT doc FROM activities WHERE id = ?", id)

    def activities(self, provider_id: str) -> list[Doc]:
        return self._all("SELECT doc FROM activities WHERE provider_id = ? ORDER BY rowid", provider_id)

    def add_activity(self, provider_id: str, doc: Doc) -> Doc:
        try:
            self._db.execute(
                "INSERT INTO activities (provider_id, id, external_id, doc) VALUES (?, ?, ?, ?)",
                (provider_id, doc["id"], doc.get("externalcourseActivityId"), json.dumps(doc)),
            )
        except sqlite3.IntegrityError:
            raise Conflict("A course activity with this externalcourseActivityId already exists.") from None
        return doc

    def replace_activity(self, provider_id: str, doc: Doc) -> None:
        self._db.execute(
            "UPDATE activities SET doc = ? WHERE provider_id = ? AND id = ?",
            (json.dumps(doc), provider_id, doc["id"]),
        )

    def delete_activity(self, provider_id: str, activity_id: str) -> None:
        self._db.execute(
            "DELETE FROM activities WHERE provider_id = ? AND id = ?", (provider_id, activity_id)
        )
