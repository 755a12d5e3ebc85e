"""The ingest side's own state: what must be decided synchronously before an event is appended.

Database structure (to validate imports), the profile registry (ids are never reused, R4),
identity claims behind unique constraints (R6) and the global suppression list (R8). Read models
never read these tables; they are rebuilt from events instead.

Identifiers are compared byte-wise (`COLLATE "C"`): they are normalised before they get here,
and a linguistic collation would only make every unique-index insert slower.
"""

from __future__ import annotations

import asyncpg

_DDL = """
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE IF NOT EXISTS ingest.databases (
    database_id text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ingest.fields (
    database_id text    NOT NULL REFERENCES ingest.databases,
    name        text    NOT NULL,
    field_type  text    NOT NULL,
    options     text[]  NOT NULL DEFAULT '{}',
    is_unique   boolean NOT NULL DEFAULT false,
    position    bigint  GENERATED ALWAYS AS IDENTITY,
    removed_at  timestamptz,
    PRIMARY KEY (database_id, name)
);
CREATE TABLE IF NOT EXISTS ingest.profiles (
    profile_id  uuid PRIMARY KEY,
    database_id text NOT NULL,
    md5_id      text COLLATE "C" NOT NULL UNIQUE,
    xxh_id      text COLLATE "C" NOT NULL UNIQUE,
    deleted_at  timestamptz
);
CREATE TABLE IF NOT EXISTS ingest.identities (
    database_id text COLLATE "C" NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    value       text COLLATE "C" NOT NULL,
    profile_id  uuid NOT NULL,
    PRIMARY KEY (database_id, kind, value)
);
CREATE INDEX IF NOT EXISTS identities_profile ON ingest.identities (profile_id);
CREATE TABLE IF NOT EXISTS ingest.import_jobs (
    job_id      uuid PRIMARY KEY,
    database_id text NOT NULL,
    format      text NOT NULL,
    locate      boolean NOT NULL,
    path        text NOT NULL,
    state       text NOT NULL DEFAULT 'queued',
    total_bytes bigint NOT NULL,
    done_bytes  bigint NOT NULL DEFAULT 0,
    rows_done   bigint NOT NULL DEFAULT 0,
    created     bigint NOT NULL DEFAULT 0,
    updated     bigint NOT NULL DEFAULT 0,
    rejected    bigint NOT NULL DEFAULT 0,
    positions   jsonb NOT NULL DEFAULT '{}',
    failure     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ingest.import_errors (
    job_id uuid   NOT NULL REFERENCES ingest.import_jobs ON DELETE CASCADE,
    row_no bigint NOT NULL,
    errors jsonb  NOT NULL,
    PRIMARY KEY (job_id, row_no)
);
CREATE TABLE IF NOT EXISTS ingest.resources (
    resource_id text PRIMARY KEY,
    database_id text NOT NULL REFERENCES ingest.databases,
    config      jsonb NOT NULL
);
-- One row per profile: its subscription list, the aggregate every subscription decision
-- (priorities, the limits, evictions) is taken on, under this row's lock.
CREATE TABLE IF NOT EXISTS ingest.subscription_lists (
    profile_id    uuid PRIMARY KEY,
    subscriptions jsonb NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS ingest.suppressions (
    email      text COLLATE "C" PRIMARY KEY,
    since      timestamptz NOT NULL DEFAULT now(),
    profile_id uuid
);
"""


async def install(conn: asyncpg.Connection) -> None:
    """Create the ingest tables that are missing (idempotent, safe under concurrent starts)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.schema'))")
        await conn.execute(_DDL)
