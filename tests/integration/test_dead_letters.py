"""Poison messages on the canonical log go to the dead-letter store with a reason (DESIGN 9)."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from contracts import Event, encode
from projections import read_models
from projections.batches import dead_letters_of
from services.eventlog.port import EventLog
from services.projector import Projector
from tests.factories import deleted, imported
from tests.integration.procs import wait_for
from tests.pg import migrated_pool

SCHEMA = "read_models"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as p:
        yield p


@pytest.mark.postgres
async def test_poison_messages_are_buried_with_reason_and_the_stream_goes_on(
    log: EventLog, pool: asyncpg.Pool
) -> None:
    before, after = uuid.uuid4(), uuid.uuid4()
    stranger = imported(uuid.uuid4(), 0)
    await log.append([imported(before, 0)])
    await log.append_raw(str(before).encode(), b"{not json")
    await log.append_raw(str(before).encode(), b'{"type": "profile.exploded", "schema_version": 1}')
    await log.append_raw(str(before).encode(), encode(stranger))  # keyed as another profile
    await log.append([imported(after, 1)])

    stop = asyncio.Event()
    runner = Projector(pool, log, read_models.NAME, read_models.project, poll_timeout=0.1)
    task = asyncio.create_task(runner.run(stop))
    try:
        count = "SELECT count(*) FROM profiles WHERE profile_id = ANY($1::uuid[])"
        assert await wait_for(pool, count, lambda n: n == 2, 30, [before, after]) == 2
    finally:
        stop.set()
        await task

    rows = await pool.fetch('SELECT reason, payload FROM dead_letters ORDER BY "offset"')
    reasons = [r["reason"] for r in rows]
    assert len(reasons) == 3
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "unknown event type 'profile.exploded'"
    assert reasons[2] == "key is not the subject"
    assert rows[0]["payload"] == b"{not json"  # the original bytes are kept for replay
    assert (
        await pool.fetchval("SELECT count(*) FROM profiles WHERE profile_id = $1", stranger.subject)
        == 0
    )


@pytest.mark.postgres
async def test_an_event_a_projection_cannot_apply_is_buried_and_the_rest_applied(
    log: EventLog, pool: asyncpg.Pool
) -> None:
    """The failed batch is halved until the bad event stands alone: a few transactions, not one
    per event, each with its checkpoint."""
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
    runner = Projector(pool, log, read_models.NAME, fragile, poll_timeout=0.1)
    task = asyncio.create_task(runner.run(stop))
    try:
        count = "SELECT count(*) FROM profiles WHERE profile_id = ANY($1::uuid[])"
        assert await wait_for(pool, count, lambda n: n == 999, 30, profiles) == 999
        isolating = transactions
        later = imported(uuid.uuid4(), 1)
        await log.append([later])  # the projector is still running
        alive = "SELECT count(*) FROM profiles WHERE profile_id = $1"
        assert await wait_for(pool, alive, lambda n: n == 1, 30, later.subject) == 1
    finally:
        stop.set()
        await task
    rows = await pool.fetch("SELECT reason, payload FROM dead_letters")
    assert [(r["reason"], r["payload"]) for r in rows] == [
        ("projection failed: ValueError", encode(poison))
    ]
    assert runner.stats.dead == 1
    assert runner.stats.applied == 1000
    # record by record would have been 1,000 transactions; halving needs about two a level
    assert isolating <= 2 * math.ceil(math.log2(1000)) + 4


@pytest.mark.postgres
async def test_dead_letters_about_a_deleted_profile_go_with_it_R26_R27(
    log: EventLog, pool: asyncpg.Pool
) -> None:
    """A dead letter keeps the original bytes, personal data included: it names the profiles
    it is about (its key's, and the subject of an event refused for its key), an export shows
    it (R27), and deleting the profile deletes it (R26); one buried after the deletion keeps
    its place and reason but not its bytes. Others' dead letters stay."""
    gone, kept = uuid.uuid4(), uuid.uuid4()
    refused = imported(gone, 0, email="gone@example.com")
    await log.append([imported(gone, 0), imported(kept, 0)])
    await log.append_raw(str(gone).encode(), b'{"email": "gone@example.com"')
    await log.append_raw(str(kept).encode(), encode(refused))  # about `gone`, keyed as `kept`
    await log.append_raw(str(kept).encode(), b"{kept's own}")
    await log.append_raw(b"not a profile id", b"{nobody's}")

    stop = asyncio.Event()
    runner = Projector(pool, log, read_models.NAME, read_models.project, poll_timeout=0.1)
    task = asyncio.create_task(runner.run(stop))
    try:
        buried = "SELECT count(*) FROM dead_letters"
        assert await wait_for(pool, buried, lambda n: n == 4, 30) == 4
        async with pool.acquire() as conn:
            exported = await dead_letters_of(conn, gone)
        await log.append([deleted(gone, 5)])
        tombstone = "SELECT count(*) FROM profile_tombstones WHERE profile_id = $1"
        assert await wait_for(pool, tombstone, lambda n: n == 1, 30, gone) == 1
        await log.append_raw(str(gone).encode(), b'{"late": "gone@example.com"')
        assert await wait_for(pool, buried, lambda n: n == 3, 30) == 3
    finally:
        stop.set()
        await task
    assert [(d["reason"], d["payload"]) for d in exported] == [
        ("not JSON: JSONDecodeError at position 28", '{"email": "gone@example.com"'),
        ("key is not the subject", encode(refused).decode()),
    ]
    left = await pool.fetch('SELECT reason, payload, profiles FROM dead_letters ORDER BY "offset"')
    assert [(bytes(r["payload"]), r["profiles"]) for r in left] == [
        (b"{kept's own}", [kept]),
        (b"{nobody's}", []),
        (b"", [gone]),  # buried after the deletion: its place and reason kept, not its bytes
    ]
    assert left[2]["reason"].endswith("(payload erased: its profile is deleted)")
