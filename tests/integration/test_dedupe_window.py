"""The projector's event-id dedupe keeps a window and forgets what is older (DESIGN 3)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from projections import read_models
from services.eventlog.kafka import KafkaLog
from services.projector import Projector
from tests.factories import imported
from tests.integration.procs import wait_for
from tests.pg import migrated_pool

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as p:
        yield p


async def test_recent_ids_still_dedupe_and_ids_past_the_window_are_pruned(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    log = KafkaLog(kafka_bootstrap, topic=f"dedupe.{uuid.uuid4().hex}", partitions=1)
    await log.start()
    recent, fresh = imported(uuid.uuid4(), 0), imported(uuid.uuid4(), 1)
    old_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO applied_events (projection, event_id, applied_at) "
        "VALUES ($1, $2, now() - interval '8 days'), ($1, $3, now() - interval '6 days')",
        read_models.NAME,
        old_id,
        recent.id,
    )
    await log.append([recent, fresh])  # `recent` was applied six days ago: a late duplicate
    runner = Projector(
        pool,
        log,
        read_models.NAME,
        read_models.project,
        poll_timeout=0.1,
        dedupe_window=timedelta(days=7),
        prune_every=0.0,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        count = "SELECT count(*) FROM profiles WHERE profile_id = $1"
        assert await wait_for(pool, count, lambda n: n == 1, 30, fresh.subject) == 1
        gone = "SELECT count(*) FROM applied_events WHERE event_id = $1"
        assert await wait_for(pool, gone, lambda n: n == 0, 10, old_id) == 0
    finally:
        stop.set()
        await task
        await log.stop()
    assert await pool.fetchval(count, recent.subject) == 0  # inside the window: not applied again
    ids = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM applied_events")}
    assert ids == {recent.id, fresh.id}
    assert runner.stats.pruned == 1
