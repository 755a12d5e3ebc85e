"""The `profiles` read model: the current profile, one row per profile."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from uuid import UUID

import asyncpg
import orjson

from contracts import Event
from domain.identity import md5_id, xxh_id
from domain.profile import ProfileState, fold_all

NAME = "profiles"

_COLUMNS = (
    "profile_id, database_id, email, phones, fields, custom, status, import_mode, "
    "created_at, updated_at, version"
)


async def load(conn: asyncpg.Connection, ids: Iterable[UUID]) -> dict[UUID, ProfileState]:
    """The stored state of the given profiles, in one query."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM profiles WHERE profile_id = ANY($1::uuid[])", list(ids)
    )
    return {r["profile_id"]: _state(r) for r in rows}


async def get(conn: asyncpg.Connection, profile_id: UUID) -> ProfileState | None:
    """One profile as the read model holds it, or None."""
    return (await load(conn, (profile_id,))).get(profile_id)


def apply(states: Mapping[UUID, ProfileState], events: Sequence[Event]) -> dict[UUID, ProfileState]:
    """Fold the events into the states; return only the profiles that changed."""
    per_profile: dict[UUID, list[Event]] = {}
    for event in events:  # grouping keeps each profile's own order
        per_profile.setdefault(event.subject, []).append(event)
    changed: dict[UUID, ProfileState] = {}
    for subject, own in per_profile.items():
        before = states.get(subject)
        after = fold_all(before, own)
        if after is not None and after is not before:
            changed[subject] = after
    return changed


async def write(conn: asyncpg.Connection, changes: Mapping[UUID, ProfileState]) -> None:
    """Upsert the changed profiles in one set-based statement (jsonb codec: see runtime)."""
    if not changes:
        return
    s = list(changes.values())
    await conn.execute(
        f"""
        INSERT INTO profiles ({_COLUMNS}, md5_id, xxh_id)
        SELECT u.pid, u.db, u.email, ARRAY(SELECT jsonb_array_elements_text(u.phones::jsonb)),
               u.fields, u.custom, u.status, u.mode, u.created, u.updated, u.version, u.md5, u.xxh
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[],
                    $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::bigint[],
                    $12::text[], $13::text[])
             AS u(pid, db, email, phones, fields, custom, status, mode, created, updated, version,
                  md5, xxh)
        ON CONFLICT (profile_id) DO UPDATE SET
            email = excluded.email, phones = excluded.phones, fields = excluded.fields,
            custom = excluded.custom, status = excluded.status, import_mode = excluded.import_mode,
            updated_at = excluded.updated_at, version = excluded.version
        """,
        [x.profile_id for x in s],
        [x.database_id for x in s],
        [x.email for x in s],
        # text, not jsonb[]: asyncpg would read nested lists as a multi-dimensional array
        [orjson.dumps(x.phones).decode() for x in s],
        [dict(x.fields) for x in s],
        [dict(x.custom) for x in s],
        [x.status for x in s],
        [x.import_mode for x in s],
        [x.created_at for x in s],
        [x.updated_at for x in s],
        [x.version for x in s],
        [md5_id(x.profile_id) for x in s],
        [xxh_id(x.profile_id) for x in s],
    )


async def project(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Load, fold and write one batch: three round trips whatever its size."""
    states = await load(conn, {e.subject for e in events})
    await write(conn, apply(states, events))


def _state(row: asyncpg.Record) -> ProfileState:
    return ProfileState(
        profile_id=row["profile_id"],
        database_id=row["database_id"],
        email=row["email"],
        phones=tuple(row["phones"]),
        fields=MappingProxyType(row["fields"]),
        custom=MappingProxyType(row["custom"]),
        status=row["status"],
        import_mode=row["import_mode"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )
