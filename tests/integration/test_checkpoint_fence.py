"""The checkpoint fence: a runner that lost its partition cannot overwrite newer progress."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from projections import bulk, checkpoints, profiles
from projections.batches import Batch, apply_batch
from tests.factories import imported
from tests.pg import migrated_pool

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as p:
        yield p


async def test_stale_runner_is_fenced_and_its_batch_rolls_back(pool: asyncpg.Pool) -> None:
    winner, stale = imported(uuid.uuid4(), 0), imported(uuid.uuid4(), 0)
    async with pool.acquire() as conn:
        # Both runners believed partition 0 stood at offset 0; the new owner commits first.
        await apply_batch(conn, "profiles", "t", Batch([winner], [], {0: (0, 5)}), profiles.project)
        with pytest.raises(checkpoints.Fenced):
            await apply_batch(
                conn, "profiles", "t", Batch([stale], [], {0: (0, 3)}), profiles.project
            )
        assert await checkpoints.load(conn, "profiles", "t", [0, 1]) == {0: 5, 1: 0}
        ids = {r["profile_id"] for r in await conn.fetch("SELECT profile_id FROM profiles")}
        assert ids == {winner.subject}  # nothing of the fenced batch was written
        applied = await conn.fetchval("SELECT count(*) FROM applied_events")
        assert applied == 1


async def test_advance_moves_only_from_the_expected_offset(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await checkpoints.advance(conn, "p", "t", {0: (0, 10), 1: (0, 4)})
        await checkpoints.advance(conn, "p", "t", {0: (10, 20)})
        with pytest.raises(checkpoints.Fenced):
            await checkpoints.advance(conn, "p", "t", {0: (10, 30)})
        with pytest.raises(checkpoints.Fenced):  # a partition never stored cannot start past 0
            await checkpoints.advance(conn, "p", "t", {2: (7, 9)})
        assert await checkpoints.load(conn, "p", "t", [0, 1, 2]) == {0: 20, 1: 4, 2: 0}


async def test_staging_twice_in_one_transaction_merges_only_the_second_rows(
    pool: asyncpg.Pool,
) -> None:
    """bulk.stage empties its table first: an older row staged earlier is not merged again."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            first = await bulk.stage(conn, "databases", ["database_id", "name"], [("a", "A")])
            second = await bulk.stage(conn, "databases", ["database_id", "name"], [("b", "B")])
            assert first == second
            assert [r["database_id"] for r in await conn.fetch(f"SELECT * FROM {second}")] == ["b"]
        # the next transaction of the session finds it empty (ON COMMIT DELETE ROWS)
        assert await conn.fetchval(f"SELECT count(*) FROM {second}") == 0


async def test_a_batch_with_an_applied_id_applies_only_the_new_ones(
    pool: asyncpg.Pool,
) -> None:
    """DESIGN 3, event ids dedupe double publishes: the fast path (a COPY of the ids) fails on
    the duplicate inside its savepoint; the batch then goes through the insert that skips
    known ids, and commits."""
    first, again, new = (imported(uuid.uuid4(), n) for n in range(3))
    async with pool.acquire() as conn:
        one = Batch([first], [], {0: (0, 1)})
        assert await apply_batch(conn, "profiles", "t", one, profiles.project) == 1
        two = Batch([first, again, new, again], [], {0: (1, 5)})
        assert await apply_batch(conn, "profiles", "t", two, profiles.project) == 2
        ids = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM applied_events")}
        assert ids == {first.id, again.id, new.id}
        assert await conn.fetchval("SELECT count(*) FROM profiles") == 3
        assert await checkpoints.load(conn, "profiles", "t", [0]) == {0: 5}


async def test_an_id_twice_in_a_new_batch_is_applied_once(pool: asyncpg.Pool) -> None:
    """DESIGN 3: the fast path's COPY of distinct ids succeeds, yet the batch holds one id
    twice; only its first occurrence is folded (a profile imported twice would read version 2)."""
    pid = uuid.uuid4()
    first, second = imported(pid, 0), imported(pid, 1)
    async with pool.acquire() as conn:
        batch = Batch([first, second, first], [], {0: (0, 3)})
        assert await apply_batch(conn, "profiles", "t", batch, profiles.project) == 2
        assert await conn.fetchval("SELECT version FROM profiles WHERE profile_id = $1", pid) == 2
        assert await conn.fetchval("SELECT count(*) FROM applied_events") == 2
