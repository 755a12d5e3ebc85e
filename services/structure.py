"""Database administration at ingest (R1-R3): the authoritative structure imports validate against.

Each change is decided under a row lock on the database, recorded in `ingest`, and returned as
the event to append, so the read models learn it from the log like everything else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import asyncpg

from contracts import (
    DatabaseCreated,
    DatabaseCreatedData,
    FieldAdded,
    FieldAddedData,
    FieldRemoved,
    FieldRemovedData,
    database_subject,
)
from domain.database import DatabaseState, check_new_field, check_removal
from domain.errors import ValidationError, Violation
from domain.fields import FieldDef
from services.event_ids import new_id

SOURCE = "/v1/databases"


async def load(
    conn: asyncpg.Connection, database_id: str, *, lock: bool = False
) -> DatabaseState | None:
    """The database's current structure, or None when it does not exist."""
    row = await conn.fetchrow(
        "SELECT name, created_at FROM ingest.databases WHERE database_id = $1"
        + (" FOR UPDATE" if lock else ""),
        database_id,
    )
    if row is None:
        return None
    rows = await conn.fetch(
        "SELECT name, field_type, options, is_unique, removed_at IS NOT NULL AS removed "
        "FROM ingest.fields WHERE database_id = $1 ORDER BY position",
        database_id,
    )
    active = {r["name"]: _definition(r) for r in rows if not r["removed"]}
    retired = {r["name"]: _definition(r) for r in rows if r["removed"]}
    return DatabaseState(
        database_id=database_id,
        name=row["name"],
        created_at=row["created_at"],
        fields=MappingProxyType(active),
        retired=MappingProxyType(retired),
    )


async def create(conn: asyncpg.Connection, database_id: str, name: str) -> DatabaseCreated:
    """Create a database; ValidationError when the id is taken."""
    now = datetime.now(UTC)
    inserted = await conn.fetchval(
        "INSERT INTO ingest.databases (database_id, name, created_at) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        database_id,
        name,
        now,
    )
    if inserted is None:
        raise ValidationError([Violation("database_id", "database_exists", database_id)])
    return DatabaseCreated(
        id=new_id(),
        source=SOURCE,
        time=now,
        subject=database_subject(database_id),
        database_id=database_id,
        data=DatabaseCreatedData(name=name),
    )


async def add_field(
    conn: asyncpg.Connection, database: DatabaseState, definition: FieldDef
) -> FieldAdded:
    """Add a custom field (call inside a transaction that loaded `database` with lock=True)."""
    check_new_field(database, definition)
    await conn.execute(
        "INSERT INTO ingest.fields (database_id, name, field_type, options, is_unique) "
        "VALUES ($1, $2, $3, $4, $5)",
        database.database_id,
        definition.name,
        definition.type,
        list(definition.options),
        definition.unique,
    )
    return FieldAdded(
        id=new_id(),
        source=SOURCE,
        time=datetime.now(UTC),
        subject=database_subject(database.database_id),
        database_id=database.database_id,
        data=FieldAddedData(
            name=definition.name,
            field_type=definition.type,
            options=definition.options,
            unique=definition.unique,
        ),
    )


async def remove_field(
    conn: asyncpg.Connection, database: DatabaseState, name: str
) -> FieldRemoved:
    """Remove a custom field (inside the locking transaction); its unique claims are freed."""
    check_removal(database, name)
    now = datetime.now(UTC)
    await conn.execute(
        "UPDATE ingest.fields SET removed_at = $3 WHERE database_id = $1 AND name = $2",
        database.database_id,
        name,
        now,
    )
    await conn.execute(
        "DELETE FROM ingest.identities WHERE database_id = $1 AND kind = $2",
        database.database_id,
        f"field:{name}",
    )
    return FieldRemoved(
        id=new_id(),
        source=SOURCE,
        time=now,
        subject=database_subject(database.database_id),
        database_id=database.database_id,
        data=FieldRemovedData(name=name),
    )


def _definition(row: asyncpg.Record) -> FieldDef:
    return FieldDef(row["name"], row["field_type"], tuple(row["options"]), row["is_unique"])
