"""An import's identity claims and its events commit together (R6 with the log): a crash after
the commit still gets the events on the log, and a failure before it leaves no claim behind.
Run on both logs: the PostgreSQL log appends in the claims' transaction, the Kafka log puts the
events in the outbox there and its sweep publishes what a crashed writer left."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest

from contracts import EncodedEvent, Event, decode
from domain.database import DatabaseState
from domain.imports import ImportItem
from projections.migrate import migrate
from services import ingest_schema
from services.eventlog.kafka import KafkaLog
from services.eventlog.port import EventLog, Position, Staged
from services.eventlog.postgres import PostgresLog
from services.imports import Checked, Importer, check
from services.runtime import create_pool
from tests.contract.test_eventlog import drain, starting_at
from tests.pg import fresh_database

DATABASE = DatabaseState(database_id="db", name="db", created_at=datetime(2026, 1, 1, tzinfo=UTC))


class CrashError(RuntimeError):
    """Stands for the writer process dying at that point."""


@dataclass
class Crashing:
    """The real log, except that the writer dies right before `publish` or inside `stage`."""

    log: EventLog
    where: str  # "publish" or "stage"

    async def stage(
        self, conn: asyncpg.Connection, events: Sequence[Event | EncodedEvent]
    ) -> Staged:
        staged = await self.log.stage(conn, events)
        if self.where == "stage":
            raise CrashError("died inside the transaction, after staging")
        return staged

    async def publish(self, staged: Staged) -> list[Position]:
        raise CrashError("died after the commit, before publishing")

    async def append(self, events: Sequence[Event | EncodedEvent]) -> list[Position]:
        raise CrashError("died before the append reached the log")  # a writer outside a txn


@pytest.fixture(params=["postgres", "kafka"])
async def setup(
    request: pytest.FixtureRequest, database_url: str
) -> AsyncIterator[tuple[asyncpg.Pool, EventLog]]:
    async with fresh_database(database_url) as url:
        pool = await create_pool(url, "read_models")
        async with pool.acquire() as conn:
            await migrate(conn, "read_models")
            await ingest_schema.install(conn)
        log: EventLog
        if request.param == "kafka":
            bootstrap = request.getfixturevalue("kafka_bootstrap")
            log = KafkaLog(
                bootstrap, topic=f"atomic.{uuid.uuid4().hex}", partitions=1, pool=pool,
                sweep_every=0.2,
            )  # fmt: skip
        else:
            log = PostgresLog(pool, topic=f"atomic.{uuid.uuid4().hex}")
        await log.start()
        try:
            yield pool, log
        finally:
            await log.stop()
            await pool.close()


async def _logged(log: EventLog, expected: int) -> list[Event]:
    """The events on the log from its start: `expected` of them, and a moment more to see that
    no other one follows."""
    consumer = log.consumer(f"check-{uuid.uuid4().hex[:8]}", starting_at())
    await consumer.start()
    try:
        records = await drain(consumer, expected)
        records += await consumer.poll(100, 1.0)
        return [decode(r.value) for r in records]
    finally:
        await consumer.stop()


async def _import_crashing(pool: asyncpg.Pool, log: EventLog, where: str, email: str) -> Checked:
    """Import one profile by `email` with a writer that dies at `where`; what it imported."""
    checked = check(DATABASE, [ImportItem(email=email)])
    with pytest.raises(CrashError):
        await Importer(pool, Crashing(log, where)).commit(  # type: ignore[arg-type]
            checked, "api", locate=False, source="/test"
        )
    return checked


async def test_a_crash_after_the_commit_still_gets_the_import_on_the_log_R6(
    setup: tuple[asyncpg.Pool, EventLog],
) -> None:
    pool, log = setup
    await _import_crashing(pool, log, "publish", "ada@example.com")
    owner = await pool.fetchval(
        "SELECT profile_id FROM ingest.identities WHERE kind = 'email' AND value = $1",
        "ada@example.com",
    )
    assert owner is not None  # the claim committed ...
    events = await _logged(log, 1)  # ... and so did its event: on Kafka the sweep published it
    assert [(e.type, e.subject) for e in events] == [("profile.imported", owner)]


async def test_a_failure_before_the_commit_leaves_no_claim_and_no_event_R6(
    setup: tuple[asyncpg.Pool, EventLog],
) -> None:
    pool, log = setup
    checked = await _import_crashing(pool, log, "stage", "bob@example.com")
    assert await pool.fetchval("SELECT count(*) FROM ingest.identities") == 0
    assert await pool.fetchval("SELECT count(*) FROM ingest.profiles") == 0
    # the email is free: a retry creates the profile and its one event
    result = await Importer(pool, log).commit(checked, "api", locate=False, source="/test")
    assert result.outcomes[0].created
    events = await _logged(log, 1)
    assert [(e.type, e.subject) for e in events] == [
        ("profile.imported", result.outcomes[0].profile_id)
    ]
