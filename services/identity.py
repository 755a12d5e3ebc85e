"""Identity claims in PostgreSQL: one profile per (database, email), whoever asks first (R6)."""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE IF NOT EXISTS ingest.identities (
    database_id text NOT NULL,
    kind        text NOT NULL,
    value       text NOT NULL,
    profile_id  uuid NOT NULL,
    PRIMARY KEY (database_id, kind, value)
);
CREATE INDEX IF NOT EXISTS identities_profile ON ingest.identities (profile_id);
"""


async def install(conn: asyncpg.Connection) -> None:
    """Create the identity table if it is missing."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.schema'))")
        await conn.execute(_SCHEMA)


async def claim_email(conn: asyncpg.Connection, database_id: str, email: str) -> tuple[UUID, bool]:
    """The profile owning `email` in the database, creating the claim if none: (id, created)."""
    candidate = uuid.uuid4()
    won = await conn.fetchval(
        "INSERT INTO ingest.identities (database_id, kind, value, profile_id) "
        "VALUES ($1, 'email', $2, $3) ON CONFLICT DO NOTHING RETURNING profile_id",
        database_id,
        email,
        candidate,
    )
    if won is not None:
        return won, True
    owner = await conn.fetchval(
        "SELECT profile_id FROM ingest.identities "
        "WHERE database_id = $1 AND kind = 'email' AND value = $2",
        database_id,
        email,
    )
    return owner, False
