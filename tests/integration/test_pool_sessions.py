"""Pooled sessions go back to the pool without a reset round trip, except those marked as
holding session state, which are fully reset (a lock whose unlock never ran is freed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.runtime import create_pool
from services.sessions import keeps_session_state
from tests.pg import fresh_database

pytestmark = pytest.mark.postgres

LOCK = 7_340_211


@pytest.fixture
async def url(database_url: str) -> AsyncIterator[str]:
    async with fresh_database(database_url) as fresh:
        yield fresh


@pytest.fixture
async def pool(url: str) -> AsyncIterator[asyncpg.Pool]:
    """One session only: every acquire hands out the session released before."""
    one = await create_pool(url, "public", max_size=1)
    try:
        yield one
    finally:
        await one.close()


async def test_a_released_session_is_handed_out_again_without_a_reset(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        pid = conn.get_server_pid()
        # a session setting is what the default reset (RESET ALL) would have undone
        await conn.execute("SET application_name = 'kept'")
    async with pool.acquire() as conn:
        assert conn.get_server_pid() == pid
        assert await conn.fetchval("SHOW application_name") == "kept"


async def test_a_marked_session_is_reset_and_its_forgotten_lock_freed(
    url: str, pool: asyncpg.Pool
) -> None:
    other = await asyncpg.connect(url)
    try:
        async with pool.acquire() as conn:
            keeps_session_state(conn)
            await conn.execute("SET application_name = 'kept'")
            await conn.execute("SELECT pg_advisory_lock($1)", LOCK)  # never unlocked
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK) is True
        await other.execute("SELECT pg_advisory_unlock($1)", LOCK)
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") != "kept"
            # the mark went with the reset: the session's next release skips it again
            await conn.execute("SET application_name = 'kept'")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "kept"
    finally:
        await other.close()


async def test_an_open_transaction_is_still_rolled_back_on_release(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE t (n int)")
        await conn.execute("BEGIN")  # left open: asyncpg rolls it back itself
        await conn.execute("INSERT INTO t VALUES (1)")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM t") == 0
