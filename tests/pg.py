"""A fresh PostgreSQL database per test, so tests never see each other's logs or models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg

from projections.migrate import migrate
from services.local.scratch import scratch_database
from services.runtime import create_pool

SCHEMA = "read_models"


def fresh_database(server_url: str) -> AbstractAsyncContextManager[str]:
    """An empty database on the server, dropped afterwards."""
    return scratch_database(server_url, prefix="t")


@asynccontextmanager
async def migrated_pool(server_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database whose read-model schema is migrated."""
    async with fresh_database(server_url) as url, migrated(url, SCHEMA) as pool:
        yield pool


@asynccontextmanager
async def migrated(url: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the read-model schema `schema` of the database at `url`, migrated."""
    pool = await create_pool(url, schema)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema)
        yield pool
    finally:
        await pool.close()
