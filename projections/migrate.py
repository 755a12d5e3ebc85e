"""Forward-only SQL migrations of the read-model schema."""

from __future__ import annotations

from importlib import resources

import asyncpg

_LOCK_KEY = 0x5052_4F46  # serialises concurrent migrators of one database


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("projections") / "migrations"
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name, (folder / name).read_text()) for name in files]


async def migrate(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Create `schema` if needed and apply the migrations it lacks; return those applied."""
    quoted = _quote(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch(f"SELECT name FROM {quoted}.schema_migrations")}
        applied = []
        await conn.execute(f"SET LOCAL search_path TO {quoted}")
        for name, sql in _migrations():
            if name not in done:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied.append(name)
    return applied


def _quote(identifier: str) -> str:
    if not identifier.replace("_", "").isalnum():
        raise ValueError(f"schema name must be alphanumeric or underscore: {identifier!r}")
    return f'"{identifier}"'
