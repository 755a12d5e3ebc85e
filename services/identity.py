"""Identity resolution at ingest (R4-R6, R8): which profile an import is about, decided once.

Claims live in `ingest.identities` behind a primary key, so two clients importing one new email at
the same time cannot both create a profile: the loser's insert conflicts, its transaction rolls
back, and the retry finds the winner's claim (R6). A batch resolves in a handful of set-based
statements, in order: a later item sees what an earlier one claimed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar
from uuid import UUID

import asyncpg

from domain.errors import Violation
from domain.identity import md5_id, xxh_id
from projections import plain

RefKind = Literal["profile_id", "md5_id", "xxh_id"]
Key = tuple[str, str]  # (kind, value): ("email", …), ("phone", …), ("field:<name>", …)
MULTI_VALUED = frozenset({"phone"})
_ATTEMPTS = 8
T = TypeVar("T")


@dataclass(frozen=True)
class Claim:
    """What one import identifies itself by: an explicit reference and/or identifying values."""

    keys: tuple[Key, ...] = ()
    ref: tuple[RefKind, str] | None = None


@dataclass(frozen=True)
class Resolved:
    """The profile an import goes to, and whether the import creates it."""

    profile_id: UUID
    created: bool


Resolution = Resolved | list[Violation]


class _LostRaceError(Exception):
    """A concurrent transaction claimed a key first: resolve the whole batch again."""


async def resolve(
    conn: asyncpg.Connection, database_id: str, claims: Sequence[Claim]
) -> list[Resolution]:
    """Resolve and record the claims of a batch atomically; a result per claim, in order."""
    results, _ = await resolve_then(conn, database_id, claims, _nothing)
    return results


async def resolve_then(
    conn: asyncpg.Connection,
    database_id: str,
    claims: Sequence[Claim],
    then: Callable[[list[Resolution]], Awaitable[T]],
) -> tuple[list[Resolution], T]:
    """Resolve the claims and run `then` on the results in the same transaction, retried as
    one: what `then` writes (an import's events, staged on the log) commits with the claims or
    not at all, so a crash between the two never leaves a claimed profile without its event."""
    for attempt in range(_ATTEMPTS):
        try:
            async with conn.transaction():
                results = await _resolve_once(conn, database_id, claims)
                return results, await then(results)
        except (_LostRaceError, asyncpg.DeadlockDetectedError, asyncpg.UniqueViolationError):
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _nothing(_: list[Resolution]) -> None:
    return None


async def _resolve_once(
    conn: asyncpg.Connection, database_id: str, claims: Sequence[Claim]
) -> list[Resolution]:
    plan = _Plan(database_id)
    keys = sorted({k for c in claims for k in c.keys})
    plan.owners = await _owners(conn, database_id, keys)
    plan.refs = await _refs(conn, [c.ref for c in claims if c.ref is not None])
    known = set(plan.owners.values()) | {pid for pid, _ in plan.refs.values()}
    plan.singles = await _singles(conn, known)
    results = [plan.decide(claim) for claim in claims]
    await plan.write(conn)
    return results


class _Plan:
    """The in-memory view of the claims a batch touches, and the writes it decided."""

    def __init__(self, database_id: str) -> None:
        self.database_id = database_id
        self.owners: dict[Key, UUID] = {}
        self.refs: dict[tuple[RefKind, str], tuple[UUID, str]] = {}
        self.singles: dict[UUID, dict[str, str]] = {}
        self.inserts: dict[Key, UUID] = {}
        self.releases: set[tuple[str, str, UUID]] = set()
        self.created: list[UUID] = []

    def decide(self, claim: Claim) -> Resolution:
        matches: dict[UUID, str] = {}
        if claim.ref is not None:
            hit = self.refs.get(claim.ref)
            if hit is None or hit[1] != self.database_id:
                return [Violation(claim.ref[0], "profile_not_found", claim.ref[1])]
            matches[hit[0]] = claim.ref[0]
        for key in claim.keys:
            owner = self.owners.get(key)
            if owner is not None:
                matches.setdefault(owner, _label(key))
        if len(matches) > 1:
            return [Violation("identity", "identity_conflict", sorted(matches.values()))]
        if matches:
            profile_id, created = next(iter(matches)), False
        else:
            profile_id, created = uuid.uuid4(), True
            self.created.append(profile_id)
        for key in claim.keys:
            self._claim(profile_id, key)
        return Resolved(profile_id, created)

    def _claim(self, profile_id: UUID, key: Key) -> None:
        kind, value = key
        if self.owners.get(key) == profile_id:
            return
        if kind not in MULTI_VALUED:  # a new email replaces the old one, which becomes free
            mine = self.singles.setdefault(profile_id, {})
            old = mine.get(kind)
            if old is not None:
                self.owners.pop((kind, old), None)
                if self.inserts.pop((kind, old), None) is None:
                    self.releases.add((kind, old, profile_id))
            mine[kind] = value
        self.owners[key] = profile_id
        self.inserts[key] = profile_id

    async def write(self, conn: asyncpg.Connection) -> None:
        if self.releases:
            gone = sorted(self.releases)
            await conn.execute(
                "DELETE FROM ingest.identities i USING unnest($2::text[], $3::text[], $4::uuid[]) "
                "AS r(kind, value, profile_id) WHERE i.database_id = $1 AND i.kind = r.kind "
                "AND i.value = r.value AND i.profile_id = r.profile_id",
                self.database_id,
                [g[0] for g in gone],
                [g[1] for g in gone],
                [g[2] for g in gone],
            )
        if self.created:
            await conn.execute(
                "INSERT INTO ingest.profiles (profile_id, database_id, md5_id, xxh_id) "
                "SELECT u.id, $1, u.md5, u.xxh FROM unnest($2::uuid[], $3::text[], $4::text[]) "
                "AS u(id, md5, xxh)",
                self.database_id,
                self.created,
                [md5_id(p) for p in self.created],
                [xxh_id(p) for p in self.created],
            )
        if self.inserts:
            claimed = sorted(self.inserts.items())  # one order everywhere: fewer deadlocks
            won = await conn.fetchval(
                "WITH c AS (INSERT INTO ingest.identities (database_id, kind, value, profile_id) "
                "SELECT $1, * FROM unnest($2::text[], $3::text[], $4::uuid[]) "
                "ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM c",
                self.database_id,
                [k[0] for k, _ in claimed],
                [k[1] for k, _ in claimed],
                [p for _, p in claimed],
            )
            if won != len(claimed):
                raise _LostRaceError


async def _owners(conn: asyncpg.Connection, database_id: str, keys: list[Key]) -> dict[Key, UUID]:
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT i.kind, i.value, i.profile_id FROM ingest.identities i "
        "JOIN unnest($2::text[], $3::text[]) AS k(kind, value) USING (kind, value) "
        "WHERE i.database_id = $1",
        database_id,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["kind"], r["value"]): r["profile_id"] for r in rows}


async def _refs(
    conn: asyncpg.Connection, refs: list[tuple[RefKind, str]]
) -> dict[tuple[RefKind, str], tuple[UUID, str]]:
    if not refs:
        return {}
    ids = [_uuid(v) for k, v in refs if k == "profile_id"]
    rows = await conn.fetch(
        "SELECT profile_id, database_id, md5_id, xxh_id FROM ingest.profiles "
        "WHERE deleted_at IS NULL AND (profile_id = ANY($1::uuid[]) "
        "OR md5_id = ANY($2::text[]) OR xxh_id = ANY($3::text[]))",
        [i for i in ids if i is not None],
        [v for k, v in refs if k == "md5_id"],
        [v for k, v in refs if k == "xxh_id"],
    )
    found: dict[tuple[RefKind, str], tuple[UUID, str]] = {}
    for r in rows:
        hit = (r["profile_id"], r["database_id"])
        found["profile_id", str(r["profile_id"])] = hit
        found["md5_id", r["md5_id"]] = hit
        found["xxh_id", r["xxh_id"]] = hit
    return found


async def _singles(conn: asyncpg.Connection, profiles: set[UUID]) -> dict[UUID, dict[str, str]]:
    if not profiles:
        return {}
    rows = await conn.fetch(
        "SELECT profile_id, kind, value FROM ingest.identities "
        "WHERE profile_id = ANY($1::uuid[]) AND kind <> ALL($2::text[])",
        list(profiles),
        list(MULTI_VALUED),
    )
    singles: dict[UUID, dict[str, str]] = {}
    for r in rows:
        singles.setdefault(r["profile_id"], {})[r["kind"]] = r["value"]
    return singles


def _label(key: Key) -> str:
    return key[0].removeprefix("field:") if key[0].startswith("field:") else key[0]


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


async def raw(conn: asyncpg.Connection, profile_id: UUID) -> dict[str, list[dict[str, object]]]:
    """The ingest side's rows of a profile (registry, identities, suppressed addresses), R27."""
    tables = {
        "profiles": "SELECT * FROM ingest.profiles WHERE profile_id = $1",
        "identities": "SELECT * FROM ingest.identities WHERE profile_id = $1 ORDER BY kind, value",
        "suppressions": "SELECT * FROM ingest.suppressions WHERE profile_id = $1 OR email IN "
        "(SELECT value FROM ingest.identities WHERE profile_id = $1 AND kind = 'email')",
    }
    return {
        name: [plain.row(r) for r in await conn.fetch(sql, profile_id)]
        for name, sql in tables.items()
    }


async def owner(conn: asyncpg.Connection, database_id: str, kind: str, value: str) -> UUID | None:
    """The profile holding an identity claim (an email, a phone, a unique field's value)."""
    found: UUID | None = await conn.fetchval(
        "SELECT profile_id FROM ingest.identities WHERE database_id = $1 AND kind = $2 "
        "AND value = $3",
        database_id,
        kind,
        value,
    )
    return found


async def profile_database(conn: asyncpg.Connection, profile_id: UUID) -> str | None:
    """The database of a live profile, or None when there is no such profile (or it is deleted)."""
    return (await profile_databases(conn, [profile_id])).get(profile_id)


async def profile_databases(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, str]:
    """The database of each live profile among `ids` (absent: no such profile, or deleted)."""
    rows = await conn.fetch(
        "SELECT profile_id, database_id FROM ingest.profiles "
        "WHERE profile_id = ANY($1::uuid[]) AND deleted_at IS NULL",
        list(ids),
    )
    return {r["profile_id"]: r["database_id"] for r in rows}


async def forget(conn: asyncpg.Connection, profile_id: UUID, when: datetime) -> str | None:
    """Free a profile's identities and mark its id used forever (R4, R26); its database or None."""
    async with conn.transaction():
        database_id: str | None = await conn.fetchval(
            "UPDATE ingest.profiles SET deleted_at = $2 "
            "WHERE profile_id = $1 AND deleted_at IS NULL RETURNING database_id",
            profile_id,
            when,
        )
        if database_id is not None:
            await conn.execute("DELETE FROM ingest.identities WHERE profile_id = $1", profile_id)
            await conn.execute(
                "DELETE FROM ingest.subscription_lists WHERE profile_id = $1", profile_id
            )
        return database_id


async def suppressed(conn: asyncpg.Connection, emails: Sequence[str]) -> set[str]:
    """The given emails that are on the global suppression list (R8)."""
    if not emails:
        return set()
    rows = await conn.fetch(
        "SELECT email FROM ingest.suppressions WHERE email = ANY($1::text[])", list(set(emails))
    )
    return {r["email"] for r in rows}


async def suppressed_profiles(conn: asyncpg.Connection, ids: Sequence[UUID]) -> set[UUID]:
    """The given profiles whose email is on the global suppression list (R8)."""
    if not ids:
        return set()
    rows = await conn.fetch(
        "SELECT i.profile_id FROM ingest.identities i "
        "JOIN ingest.suppressions s ON s.email = i.value "
        "WHERE i.kind = 'email' AND i.profile_id = ANY($1::uuid[])",
        list(ids),
    )
    return {r["profile_id"] for r in rows}


async def suppress(conn: asyncpg.Connection, profile_ids: Sequence[UUID]) -> None:
    """Put the emails of these profiles on the global suppression list (R8), in one statement;
    a profile without an email adds nothing."""
    await conn.execute(
        "INSERT INTO ingest.suppressions (email, profile_id) SELECT value, profile_id "
        "FROM ingest.identities WHERE kind = 'email' AND profile_id = ANY($1::uuid[]) "
        "ON CONFLICT (email) DO NOTHING",
        list(profile_ids),
    )


async def unsuppress(conn: asyncpg.Connection, email: str) -> bool:
    """Remove an address from the suppression list (the only way off it, R8)."""
    removed = await conn.fetchval(
        "DELETE FROM ingest.suppressions WHERE email = $1 RETURNING 1", email
    )
    return removed is not None


async def release(
    conn: asyncpg.Connection, profile_id: UUID, kinds: Sequence[str], phones: Sequence[str]
) -> None:
    """Free claims of a profile: every claim of the given kinds, and the given phones."""
    await conn.execute(
        "DELETE FROM ingest.identities WHERE profile_id = $1 "
        "AND (kind = ANY($2::text[]) OR (kind = 'phone' AND value = ANY($3::text[])))",
        profile_id,
        list(kinds),
        list(phones),
    )


async def suppress_addresses(
    conn: asyncpg.Connection, addresses: Sequence[tuple[str, UUID | None]]
) -> None:
    """Put addresses on the global suppression list (R8: hard bounces), in one statement."""
    await conn.execute(
        "INSERT INTO ingest.suppressions (email, profile_id) "
        "SELECT * FROM unnest($1::text[], $2::uuid[]) ON CONFLICT (email) DO NOTHING",
        [a for a, _ in addresses],
        [p for _, p in addresses],
    )
