"""A projector that is behind takes larger batches, one at the head small ones (its halving of a
failed batch is tested with the dead letters)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import pytest

from contracts import Event
from projections import read_models
from services.eventlog.postgres import PostgresLog
from services.projector import Projector
from tests.factories import imported
from tests.integration.procs import wait_for
from tests.pg import migrated_pool

COUNT = "SELECT count(*) FROM profiles WHERE profile_id = ANY($1::uuid[])"


@pytest.mark.postgres
async def test_batches_grow_while_behind_and_shrink_at_the_head(database_url: str) -> None:
    async with migrated_pool(database_url) as pool:
        await _grow_and_shrink(pool)


async def _grow_and_shrink(pool: asyncpg.Pool) -> None:
    log = PostgresLog(pool)
    await log.start()
    profiles = [uuid.uuid4() for _ in range(5000)]
    await log.append([imported(p, 0) for p in profiles])
    sizes: list[int] = []

    async def counting(conn: asyncpg.Connection, batch: Sequence[Event]) -> None:
        sizes.append(len(batch))
        await read_models.project(conn, batch)

    stop = asyncio.Event()
    runner = Projector(
        pool, log, read_models.NAME, counting, batch_size=100, max_batch=1600, poll_timeout=0.1
    )
    task = asyncio.create_task(runner.run(stop))
    try:
        assert await wait_for(pool, COUNT, lambda n: n == 5000, 60, profiles) == 5000
        late = imported(uuid.uuid4(), 1)
        await log.append([late])
        alone = "SELECT count(*) FROM profiles WHERE profile_id = $1"
        assert await wait_for(pool, alone, lambda n: n == 1, 30, late.subject) == 1
    finally:
        stop.set()
        await task
        await log.stop()
    assert sizes[:6] == [100, 200, 400, 800, 1600, 1600]  # doubling up to max_batch
    assert sum(sizes[:-1]) == 5000
    assert sizes[-1] == 1  # at the head: the small batch again, not a wait for 1,600
    assert runner.stats.applied == 5001
