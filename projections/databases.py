"""The `databases` read model: each database and its custom-field structure (R1-R3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import asyncpg

from contracts import DatabaseCreated, Event, FieldAdded, FieldRemoved
from domain.database import DatabaseState, fold_all
from domain.fields import FieldDef

STRUCTURE_EVENTS = (DatabaseCreated, FieldAdded, FieldRemoved)
STRUCTURE_TYPES = frozenset(c.model_fields["type"].default for c in STRUCTURE_EVENTS)
# every event type `project` reads (`read_models` hands it only those)
HANDLES = STRUCTURE_TYPES


async def load(conn: asyncpg.Connection, ids: Iterable[str]) -> dict[str, DatabaseState]:
    """The stored state of the given databases (configuration: two small queries)."""
    wanted = list(ids)
    rows = await conn.fetch(
        "SELECT database_id, name, created_at FROM databases WHERE database_id = ANY($1::text[])",
        wanted,
    )
    fields = await conn.fetch(
        "SELECT database_id, name, field_type, options, is_unique, removed FROM database_fields "
        "WHERE database_id = ANY($1::text[]) ORDER BY database_id, position",
        wanted,
    )
    active: dict[str, dict[str, FieldDef]] = {r["database_id"]: {} for r in rows}
    retired: dict[str, dict[str, FieldDef]] = {r["database_id"]: {} for r in rows}
    for f in fields:
        target = retired if f["removed"] else active
        definition = FieldDef(f["name"], f["field_type"], tuple(f["options"]), f["is_unique"])
        target[f["database_id"]][f["name"]] = definition
    return {
        r["database_id"]: DatabaseState(
            database_id=r["database_id"],
            name=r["name"],
            created_at=r["created_at"],
            fields=MappingProxyType(active[r["database_id"]]),
            retired=MappingProxyType(retired[r["database_id"]]),
        )
        for r in rows
    }


async def get(conn: asyncpg.Connection, database_id: str) -> DatabaseState | None:
    """One database as the read model holds it, or None."""
    return (await load(conn, (database_id,))).get(database_id)


async def project(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Fold the structure events of a batch into the databases they touch."""
    own = [e for e in events if e.type in STRUCTURE_TYPES]
    if not own:
        return
    states = await load(conn, {e.database_id for e in own})
    changed = {}
    for database_id in dict.fromkeys(e.database_id for e in own):
        mine = [e for e in own if e.database_id == database_id]
        after = fold_all(states.get(database_id), mine)
        if after is not None:
            changed[database_id] = after
    await write(conn, changed)


async def write(conn: asyncpg.Connection, changes: Mapping[str, DatabaseState]) -> None:
    """Replace the structure rows of the changed databases (a handful per batch at most)."""
    if not changes:
        return
    ids = list(changes)
    s = list(changes.values())
    await conn.execute(
        "INSERT INTO databases (database_id, name, created_at) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) "
        "ON CONFLICT (database_id) DO UPDATE SET name = excluded.name",
        ids,
        [x.name for x in s],
        [x.created_at for x in s],
    )
    await conn.execute("DELETE FROM database_fields WHERE database_id = ANY($1::text[])", ids)
    rows = [
        (x.database_id, f.name, f.type, list(f.options), f.unique, i, removed)
        for x in s
        for removed, defs in ((False, x.fields), (True, x.retired))
        for i, f in enumerate(defs.values(), start=len(x.fields) if removed else 0)
    ]
    await conn.executemany(
        "INSERT INTO database_fields "
        "(database_id, name, field_type, options, is_unique, position, removed) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        rows,
    )
