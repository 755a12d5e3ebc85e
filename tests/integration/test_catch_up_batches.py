"""A projector that is behind takes larger batches, one at the head small ones; a bad event in a
large batch is found by halving (DESIGN 9: applied exactly once, the poison buried)."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from contracts import Event, encode
from projections import read_models
from services.eventlog.kafka import KafkaLog
from services.eventlog.port import EventLog
from services.eventlog.postgres import PostgresLog
from services.projector import Projector
from tests.factories import imported
from tests.integration.procs import wait_for
from tests.pg import migrated_pool

COUNT = "SELECT count(*) FROM profiles WHERE profile_id = ANY($1::uuid[])"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as p:
        yield p


@pytest.fixture(params=["postgres", pytest.param("kafka", marks=pytest.mark.kafka)])
async def log(request: pytest.FixtureRequest, pool: asyncpg.Pool) -> AsyncIterator[EventLog]:
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        log: EventLog = KafkaLog(bootstrap, topic=f"catchup.{uuid.uuid4().hex}", partitions=1)
    else:
        log = PostgresLog(pool)
    await log.start()
    yield log
    await log.stop()


@pytest.mark.postgres
async def test_batches_grow_while_behind_and_shrink_at_the_head(pool: asyncpg.Pool) -> None:
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


@pytest.mark.postgres
async def test_a_bad_event_in_a_large_batch_is_found_by_halving(
    log: EventLog, pool: asyncpg.Pool
) -> None:
    profiles = [uuid.uuid4() for _ in range(1000)]
    events = [imported(p, 0) for p in profiles]
    poison = events[637]
    await log.append(events)
    transactions = 0

    async def fragile(conn: asyncpg.Connection, batch: Sequence[Event]) -> None:
        nonlocal transactions
        transactions += 1
        if any(e.id == poison.id for e in batch):
            raise ValueError("a projection bug this event triggers")
        await read_models.project(conn, batch)

    stop = asyncio.Event()
    runner = Projector(
        pool, log, read_models.NAME, fragile, batch_size=1000, max_batch=1000, poll_timeout=0.1
    )
    task = asyncio.create_task(runner.run(stop))
    try:
        assert await wait_for(pool, COUNT, lambda n: n == 999, 60, profiles) == 999
        await asyncio.sleep(0.3)  # nothing more comes
    finally:
        stop.set()
        await task
    rows = await pool.fetch("SELECT reason, payload FROM dead_letters")
    assert [(r["reason"], r["payload"]) for r in rows] == [
        ("projection failed: ValueError", encode(poison))
    ]
    assert runner.stats.dead == 1
    assert runner.stats.applied == 999
    # one by one would have been 1,000 transactions; halving needs about two per level
    assert transactions <= 2 * math.ceil(math.log2(1000)) + 4
