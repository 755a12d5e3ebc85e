"""The Kafka log's outbox (DESIGN 2, the log): a write's events staged as one batch, published
in order with a position each, and what an earlier version left behind carried over."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from contracts import decode
from services.eventlog.kafka import KafkaLog
from services.runtime import create_pool
from tests.contract.test_eventlog import drain, starting_at
from tests.factories import imported
from tests.pg import fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with fresh_database(database_url) as url:
        p = await create_pool(url, "public")
        try:
            yield p
        finally:
            await p.close()


async def _log(pool: asyncpg.Pool, bootstrap: str, batch: int = 5000) -> KafkaLog:
    log = KafkaLog(bootstrap, topic=f"outbox.{uuid.uuid4().hex}", partitions=3, pool=pool)
    await log.start()
    assert log._outbox is not None
    log._outbox.batch = batch
    return log


async def test_staged_writes_publish_in_order_with_a_position_per_event(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    """Three writes (7, 1 and 5 events) flushed 4 events at a time: every event once, each
    profile's events in write order, and each write gets its events' positions back."""
    log = await _log(pool, kafka_bootstrap, batch=4)
    try:
        pids = [uuid.uuid4() for _ in range(3)]
        writes = [
            [imported(pids[n % 3], n) for n in range(7)],
            [imported(pids[0], 10)],
            [imported(pids[n % 2], 20 + n) for n in range(5)],
        ]
        staged = []
        for events in writes:
            async with pool.acquire() as conn, conn.transaction():
                staged.append(await log.stage(conn, events))
        assert await pool.fetchval("SELECT count(*) FROM ingest.outbox_batches") == 3
        positions = [await log.publish(s) for s in staged]
        assert [len(p) for p in positions] == [7, 1, 5]
        consumer = log.consumer(f"g-{uuid.uuid4().hex}", starting_at())
        await consumer.start()
        try:
            records = await drain(consumer, 13)
        finally:
            await consumer.stop()
        ids = [decode(r.value).id for r in records]
        assert sorted(map(str, ids)) == sorted(str(e.id) for w in writes for e in w)
        where = {decode(r.value).id: (r.partition, r.offset) for r in records}
        for events, got in zip(writes, positions, strict=True):
            assert [(p.partition, p.offset) for p in got] == [where[e.id] for e in events]
        for pid in pids:  # one key, one partition, in the order the writes were made
            mine = [e for w in writes for e in w if e.subject == pid]
            assert sorted(mine, key=lambda e: where[e.id][1]) == mine
        waiting = "SELECT count(*) FROM ingest.outbox_batches WHERE partitions IS NULL"
        assert await pool.fetchval(waiting) == 0
    finally:
        await log.stop()


async def test_unpublished_rows_of_the_row_per_event_outbox_are_carried_over(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    """An earlier version's `ingest.outbox` with one published and one unpublished row: the
    unpublished event moves to the batches, is published by the next flush, and the old table
    goes; the published one is not sent again."""
    sent, waiting = imported(uuid.uuid4(), 0), imported(uuid.uuid4(), 1)
    await pool.execute(
        "CREATE SCHEMA ingest; CREATE TABLE ingest.outbox (id bigserial PRIMARY KEY, "
        "topic text NOT NULL, event_id uuid NOT NULL, key bytea NOT NULL, value bytea NOT NULL, "
        'type text NOT NULL, schema_version int NOT NULL, partition int, "offset" bigint, '
        "created_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
    log = KafkaLog(kafka_bootstrap, topic=f"outbox.{uuid.uuid4().hex}", partitions=1, pool=pool)
    for event, partition in ((sent, 0), (waiting, None)):
        await pool.execute(
            "INSERT INTO ingest.outbox (topic, event_id, key, value, type, schema_version, "
            'partition, "offset") VALUES ($1, $2, $3, $4, $5, 1, $6::int, $6::bigint)',
            log.topic, event.id, str(event.subject).encode(),
            event.model_dump_json().encode(), event.type, partition,
        )  # fmt: skip
    await log.start()
    try:
        assert await pool.fetchval("SELECT to_regclass('ingest.outbox')") is None
        assert log._outbox is not None
        await log._outbox.flush()
        consumer = log.consumer(f"g-{uuid.uuid4().hex}", starting_at())
        await consumer.start()
        try:
            records = await drain(consumer, 2, within=5.0)
        finally:
            await consumer.stop()
        assert [decode(r.value).id for r in records] == [waiting.id]
    finally:
        await log.stop()


async def test_batches_are_stored_uncompressed(pool: asyncpg.Pool, kafka_bootstrap: str) -> None:
    """The bulky columns skip compression (a batch is gone within minutes), set once."""
    for _ in range(2):  # a second start finds them set and leaves the table alone
        log = await _log(pool, kafka_bootstrap)
        await log.stop()
    storage = await pool.fetch(
        "SELECT attname, attstorage::text FROM pg_attribute "
        "WHERE attrelid = 'ingest.outbox_batches'::regclass "
        "AND attname IN ('event_ids', 'keys', 'values')"
    )
    assert {(r["attname"], r["attstorage"]) for r in storage} == {
        ("event_ids", "e"), ("keys", "e"), ("values", "e"),
    }  # fmt: skip
