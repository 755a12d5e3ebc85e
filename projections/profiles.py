"""The `profiles` read model: the current profile, one row per profile."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Literal
from uuid import UUID

import asyncpg

from contracts import Event, ProfileDeleted, ProfileImported, ProfileStatusChanged, ProfileUpdated
from domain.identity import md5_id, xxh_id
from domain.profile import ACTIVITY_TYPES, ProfileState, fold_all, thaw
from projections import bulk, plain

NAME = "profiles"

_COLUMNS = (
    "profile_id, database_id, email, phones, fields, custom, status, import_mode, "
    "created_at, updated_at, version, located, acted_at"
)
_COLUMN_LIST = [c.strip() for c in _COLUMNS.split(",")]
_UPSERT_COLUMNS = [*_COLUMN_LIST, "md5_id", "xxh_id"]
_ACTIVITY_COLUMNS = (
    "profile_id",
    "fields",
    "located",
    "status",
    "updated_at",
    "version",
    "acted_at",
)
_P_COLUMNS = ", ".join(f"p.{c}" for c in _COLUMN_LIST)
PROFILE_EVENTS = (ProfileImported, ProfileUpdated, ProfileStatusChanged, ProfileDeleted)
PROFILE_TYPES = frozenset(c.model_fields["type"].default for c in PROFILE_EVENTS) | ACTIVITY_TYPES
# every event type `project` reads (`read_models` hands it only those)
HANDLES = PROFILE_TYPES
Lookup = Literal["md5", "xxh", "email", "phone"]


@dataclass(frozen=True)
class Loaded:
    """Stored profiles of a batch, and the ids among them that were deleted."""

    profiles: Mapping[UUID, ProfileState]
    tombstones: frozenset[UUID] = frozenset()


@dataclass(frozen=True)
class Changes:
    """What a batch changed: profiles to write, profiles deleted with when, and which of the
    written ones had no stored row (those are inserted, not merged)."""

    upserts: Mapping[UUID, ProfileState]
    deletions: Mapping[UUID, datetime] = field(default_factory=dict)
    new: frozenset[UUID] = frozenset()
    # stored profiles whose email, phones, custom fields and import mode stayed as they were:
    # activity (R21, R22) and status moves, the bulk of a busy stream, rewrite five columns
    activity_only: frozenset[UUID] = frozenset()


async def load(conn: asyncpg.Connection, ids: Iterable[UUID]) -> Loaded:
    """The stored state of the given profiles and which of them are deleted, in one query."""
    rows = await conn.fetch(
        f"SELECT u.id AS wanted, t.profile_id IS NOT NULL AS tombstone, {_P_COLUMNS} "
        "FROM unnest($1::uuid[]) AS u(id) "
        "LEFT JOIN profiles p ON p.profile_id = u.id "
        "LEFT JOIN profile_tombstones t ON t.profile_id = u.id "
        "WHERE p.profile_id IS NOT NULL OR t.profile_id IS NOT NULL",
        list(ids),
    )
    states = {r["profile_id"]: _state(r) for r in rows if r["profile_id"] is not None}
    return Loaded(states, frozenset(r["wanted"] for r in rows if r["tombstone"]))


async def get(conn: asyncpg.Connection, profile_id: UUID) -> ProfileState | None:
    """One profile as reads show it (removed custom fields filtered out, R1), or None."""
    return await _find(conn, "p.profile_id = $1", profile_id)


async def find(
    conn: asyncpg.Connection, by: Lookup, value: str, database_id: str | None
) -> ProfileState | None:
    """A profile by MD5 or XXH id (R5), or by email or phone within a database (R6)."""
    if by == "md5":
        return await _find(conn, "p.md5_id = $1", value)
    if by == "xxh":
        return await _find(conn, "p.xxh_id = $1", value)
    if by == "email":
        return await _find(conn, "p.database_id = $2 AND p.email = $1", value, database_id)
    return await _find(conn, "p.database_id = $2 AND p.phones @> ARRAY[$1]", value, database_id)


async def _find(conn: asyncpg.Connection, where: str, *args: object) -> ProfileState | None:
    row = await conn.fetchrow(
        f"SELECT {_P_COLUMNS}, ARRAY(SELECT f.name FROM database_fields f "
        "  WHERE f.database_id = p.database_id AND NOT f.removed) AS active "
        f"FROM profiles p WHERE {where} LIMIT 1",
        *args,
    )
    if row is None:
        return None
    state = _state(row)
    active = set(row["active"])
    custom = {k: v for k, v in state.custom.items() if k in active}
    return replace(state, custom=MappingProxyType(custom))


def apply(states: Loaded, events: Sequence[Event]) -> Changes:
    """Fold the events into the states; return only what changed (None = deleted, R26)."""
    return _fold(states, _per_profile(events))


def _per_profile(events: Sequence[Event]) -> dict[int, list[Event]]:
    """The batch's profile events by profile, each profile's in the log's order.

    Keyed by each subject's integer: a UUID hashes in Python code (`uuid.py`), an int in C,
    and this runs for every event of a batch.
    """
    per_profile: dict[int, list[Event]] = {}
    for event in events:
        if event.type in PROFILE_TYPES:
            if (own := per_profile.get(event.subject.int)) is None:
                per_profile[event.subject.int] = [event]
            else:
                own.append(event)
    return per_profile


def _fold(states: Loaded, per_profile: dict[int, list[Event]]) -> Changes:
    upserts: dict[UUID, ProfileState] = {}
    deletions: dict[UUID, datetime] = {}
    new: set[UUID] = set()
    narrow: set[UUID] = set()
    tombstones = states.tombstones
    for own in per_profile.values():
        subject = own[0].subject
        if tombstones and subject in tombstones:
            continue
        before = states.profiles.get(subject)
        after = fold_all(before, own)
        if after is None and isinstance(own[-1], ProfileDeleted):
            deletions[subject] = own[-1].time
        elif after is not None and after is not before:
            upserts[subject] = after
            if before is None:
                new.add(subject)
            elif _same_identity_and_custom(before, after):
                narrow.add(subject)
    return Changes(upserts, deletions, frozenset(new), frozenset(narrow))


def _same_identity_and_custom(before: ProfileState, after: ProfileState) -> bool:
    return (
        after.email == before.email
        and after.phones == before.phones
        and after.import_mode == before.import_mode
        and after.custom == before.custom
    )


async def write(conn: asyncpg.Connection, changes: Changes) -> None:
    """Delete and upsert the changed profiles, set-based (jsonb codec: see runtime)."""
    if changes.deletions:
        await _delete(conn, changes.deletions)
    # a profile the batch created has no row to merge with: COPY it straight into the table
    # (an import of new profiles then costs one COPY instead of a staging COPY plus a merge)
    fresh: list[ProfileState] = []
    known: list[ProfileState] = []
    narrow: list[ProfileState] = []
    for profile_id, state in changes.upserts.items():
        if profile_id in changes.new:
            fresh.append(state)
        elif profile_id in changes.activity_only:
            narrow.append(state)
        else:
            known.append(state)
    if fresh:
        await bulk.insert(conn, "profiles", _UPSERT_COLUMNS, _rows(fresh))
    if known:
        await _upsert(conn, known)
    if narrow:
        await _update_activity(conn, narrow)


async def _delete(conn: asyncpg.Connection, deletions: Mapping[UUID, datetime]) -> None:
    await conn.execute(
        "WITH gone AS (DELETE FROM profiles WHERE profile_id = ANY($1::uuid[])) "
        "INSERT INTO profile_tombstones (profile_id, deleted_at) "
        "SELECT * FROM unnest($1::uuid[], $2::timestamptz[]) ON CONFLICT DO NOTHING",
        list(deletions),
        list(deletions.values()),
    )


def _rows(states: list[ProfileState]) -> list[tuple[object, ...]]:
    return [
        (
            x.profile_id,
            x.database_id,
            x.email,
            list(x.phones),
            thaw(x.fields),
            thaw(x.custom),
            x.status,
            x.import_mode,
            x.created_at,
            x.updated_at,
            x.version,
            sorted(x.located),
            x.acted_at,
            md5_id(x.profile_id),
            xxh_id(x.profile_id),
        )
        for x in states
    ]


async def _upsert(conn: asyncpg.Connection, states: list[ProfileState]) -> None:
    staged = await bulk.stage(conn, "profiles", _UPSERT_COLUMNS, _rows(states))
    await conn.execute(
        f"""
        INSERT INTO profiles ({", ".join(_UPSERT_COLUMNS)})
        SELECT {", ".join(_UPSERT_COLUMNS)} FROM {staged}
        ON CONFLICT (profile_id) DO UPDATE SET
            email = excluded.email, phones = excluded.phones, fields = excluded.fields,
            custom = excluded.custom, status = excluded.status, import_mode = excluded.import_mode,
            updated_at = excluded.updated_at, version = excluded.version,
            located = excluded.located, acted_at = excluded.acted_at
        """
    )


async def _update_activity(conn: asyncpg.Connection, states: list[ProfileState]) -> None:
    """Rewrite only what activity and status moves change: the staged rows carry no custom
    fields, email or phones, so there is half as much to encode, send and parse."""
    staged = await bulk.stage(
        conn,
        "profiles",
        _ACTIVITY_COLUMNS,
        [
            (
                x.profile_id,
                thaw(x.fields),
                sorted(x.located),
                x.status,
                x.updated_at,
                x.version,
                x.acted_at,
            )
            for x in states
        ],
    )
    await conn.execute(
        f"""
        UPDATE profiles p SET fields = s.fields, located = s.located, status = s.status,
            updated_at = s.updated_at, version = s.version, acted_at = s.acted_at
        FROM {staged} s WHERE p.profile_id = s.profile_id
        """
    )


async def project(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Load, fold and write one batch: three round trips whatever its size."""
    per_profile = _per_profile(events)
    if per_profile:
        loaded = await load(conn, [own[0].subject for own in per_profile.values()])
        await write(conn, _fold(loaded, per_profile))


def _state(row: asyncpg.Record) -> ProfileState:
    return ProfileState.of(
        {
            "profile_id": row["profile_id"],
            "database_id": row["database_id"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "email": row["email"],
            "phones": tuple(row["phones"]),
            "fields": MappingProxyType(row["fields"]),
            "custom": MappingProxyType(row["custom"]),
            "status": row["status"],
            "import_mode": row["import_mode"],
            "version": row["version"],
            "located": frozenset(row["located"]),
            "acted_at": row["acted_at"],
        }
    )


async def raw(conn: asyncpg.Connection, profile_id: UUID) -> dict[str, object] | None:
    """The stored row of a profile, every column, for a personal data export (R27)."""
    row = await conn.fetchrow("SELECT * FROM profiles WHERE profile_id = $1", profile_id)
    return None if row is None else plain.row(row)
