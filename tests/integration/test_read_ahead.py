"""A projector that is behind decodes its next batch while PostgreSQL writes the current one
(`Projector.read_ahead`): every event is still applied once and in the log's order, also when
a batch fails with a batch read ahead of it (DESIGN 4, 9)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

import services.projector as projector_module
from contracts import Event
from projections import read_models
from projections.batches import Project
from services.eventlog.port import EventLog, LogRecord
from services.projector import Decoded, Projector
from tests.factories import imported
from tests.pg import migrated_pool

EVENTS = 3000


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as p:
        await p.execute("CREATE TABLE seen (n bigserial PRIMARY KEY, event_id uuid NOT NULL)")
        yield p


async def _record_order(conn: asyncpg.Connection, batch: Sequence[Event]) -> None:
    """The projection under test: the read models, plus the order it applied events in (rows a
    failed transaction rolls back with everything else)."""
    await read_models.project(conn, batch)
    await conn.execute(
        "INSERT INTO seen (event_id) SELECT unnest($1::uuid[])", [e.id for e in batch]
    )


def _catching_up(
    pool: asyncpg.Pool, log: EventLog, project: Project, read_ahead: bool = True
) -> Projector:
    """A projector whose batches grow from 100 to 800 records while it is behind."""
    return Projector(
        pool,
        log,
        read_models.NAME,
        project,
        batch_size=100,
        max_batch=800,
        poll_timeout=0.1,
        read_ahead=read_ahead,
    )


async def _run_until_applied(pool: asyncpg.Pool, runner: Projector, total: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        for _ in range(1200):
            if runner.stats.applied + runner.stats.dead >= total or task.done():
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


async def _appended(log: EventLog) -> list[Event]:
    # two events a profile, far apart in the log: a batch applied out of order would show
    profiles = [uuid.uuid4() for _ in range(EVENTS // 2)]
    events = [imported(p, 0) for p in profiles] + [imported(p, 1) for p in profiles]
    await log.append(events)
    return events


@pytest.mark.postgres
@pytest.mark.parametrize("read_ahead", [True, False])
async def test_the_next_batch_is_decoded_before_this_one_is_applied_and_order_is_kept(
    log: EventLog, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, read_ahead: bool
) -> None:
    events = await _appended(log)
    decoded_so_far = 0
    ahead = 0  # records decoded while records decoded before them were not applied yet

    def decoded(records: Sequence[LogRecord]) -> list[Decoded]:
        nonlocal decoded_so_far, ahead
        if decoded_so_far > runner.stats.applied:
            ahead += len(records)
        decoded_so_far += len(records)
        return original(records)

    original = projector_module._decoded
    monkeypatch.setattr(projector_module, "_decoded", decoded)
    runner = _catching_up(pool, log, _record_order, read_ahead=read_ahead)
    await _run_until_applied(pool, runner, EVENTS)

    seen = [r["event_id"] for r in await pool.fetch("SELECT event_id FROM seen ORDER BY n")]
    assert seen == [e.id for e in events]  # each once, in the log's order
    assert runner.stats.applied == EVENTS
    assert await pool.fetchval("SELECT count(*) FROM profiles") == EVENTS // 2
    if read_ahead:
        # batches of 100, 200, 400, 800, 800, 700: each after the first polled and decoded
        # while the one before it was applied (fewer if a poll found less already fetched)
        assert ahead >= EVENTS // 2
    else:
        assert ahead == 0


@pytest.mark.postgres
async def test_a_batch_that_fails_drops_the_batch_read_ahead_of_it(
    log: EventLog, pool: asyncpg.Pool
) -> None:
    """A retryable failure moves the consumer back to its checkpoint: the batch decoded ahead
    must not be applied before the failed one is (it would be skipped for good)."""
    events = await _appended(log)
    transactions = 0

    async def flaky(conn: asyncpg.Connection, batch: Sequence[Event]) -> None:
        nonlocal transactions
        transactions += 1
        if transactions == 4:  # a batch of 800 with one read ahead of it
            raise asyncpg.InterfaceError("the connection dropped")
        await _record_order(conn, batch)

    runner = _catching_up(pool, log, flaky)
    await _run_until_applied(pool, runner, EVENTS)

    seen = [r["event_id"] for r in await pool.fetch("SELECT event_id FROM seen ORDER BY n")]
    assert seen == [e.id for e in events]
    assert runner.stats.applied == EVENTS
    assert transactions > 4


@pytest.mark.postgres
async def test_a_poison_event_is_isolated_and_the_batch_read_ahead_still_applies(
    log: EventLog, pool: asyncpg.Pool
) -> None:
    events = await _appended(log)
    poison = events[1234]

    async def fragile(conn: asyncpg.Connection, batch: Sequence[Event]) -> None:
        if any(e.id == poison.id for e in batch):
            raise ValueError("a projection bug this event triggers")
        await _record_order(conn, batch)

    runner = _catching_up(pool, log, fragile)
    await _run_until_applied(pool, runner, EVENTS)

    seen = [r["event_id"] for r in await pool.fetch("SELECT event_id FROM seen ORDER BY n")]
    assert seen == [e.id for e in events if e is not poison]
    assert runner.stats.dead == 1
    reasons = [r["reason"] for r in await pool.fetch("SELECT reason FROM dead_letters")]
    assert reasons == ["projection failed: ValueError"]
