"""The transactional outbox of the Kafka log: events committed with the write that made them.

A Kafka append cannot join a PostgreSQL transaction. A write that changes ingest state (a
subscription list, identities, a database's structure, a resource) and has events to publish
inserts them here in its own transaction; once it has committed, `flush` publishes every
unpublished batch, oldest first, and records where each event landed. A writer that dies
between its commit and its flush leaves batches that the next flush publishes (any process's:
every process with a Kafka log sweeps now and then), so a committed write's events are never
lost and a rolled-back write's events are never published.

A write's events are one row, not a row each: a file import stages thousands of events a
transaction, and a row per event cost an insert, an update and a delete per event.

One flush at a time per topic in the whole deployment (a PostgreSQL advisory lock): batches go
out in id order, so two writes of one profile that serialise on a write-model lock keep their
order on the log. A flush that dies after Kafka acknowledged a batch but before recording its
positions publishes it again: here the log is at least once, and the projector drops a repeated
event id.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import structlog

from contracts.encoded import EncodedEvent, ce_headers
from services.eventlog.port import Position
from services.sessions import keeps_session_state

log = structlog.get_logger(__name__)

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers
Send = Callable[[Sequence[Record]], Awaitable[list[Position]]]

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE IF NOT EXISTS ingest.outbox_batches (
    id          bigserial   PRIMARY KEY,
    topic       text        NOT NULL,
    n           int         NOT NULL,
    event_ids   uuid[]      NOT NULL,
    keys        bytea[]     NOT NULL,
    "values"    bytea[]     NOT NULL,
    types       text[]      NOT NULL,
    versions    int[]       NOT NULL,
    partitions  int[],
    offsets     bigint[],
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS outbox_batches_unpublished ON ingest.outbox_batches (topic, id)
    WHERE partitions IS NULL;
-- A batch lives minutes: compressing its megabytes on the way in and out is wasted work
-- (stage and publish took 1.5 times as long). Altered once, not at every start: the ALTER
-- would lock the table against the writers of the processes already running.
DO $$ BEGIN
IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'ingest.outbox_batches'::regclass
           AND attname IN ('event_ids', 'keys', 'values') AND attstorage <> 'e') THEN
    ALTER TABLE ingest.outbox_batches ALTER COLUMN event_ids SET STORAGE EXTERNAL,
        ALTER COLUMN keys SET STORAGE EXTERNAL, ALTER COLUMN "values" SET STORAGE EXTERNAL;
END IF;
END $$;
"""

# The row-per-event outbox of earlier versions: what it still holds unpublished moves over,
# in its order, before the table goes.
_FROM_ROWS = """
DO $$ BEGIN
IF to_regclass('ingest.outbox') IS NOT NULL THEN
    INSERT INTO ingest.outbox_batches
        (topic, n, event_ids, keys, "values", types, versions, created_at)
    SELECT topic, 1, ARRAY[event_id], ARRAY[key], ARRAY[value], ARRAY[type],
        ARRAY[schema_version], created_at
    FROM ingest.outbox WHERE partition IS NULL ORDER BY id;
    DROP TABLE ingest.outbox;
END IF;
END $$;
"""


class OutboxError(RuntimeError):
    """A staged batch has no recorded positions after a flush (it was never committed)."""


class Outbox:
    """Batches put in a caller's transaction, published to Kafka by `flush` after its commit."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        topic: str,
        send: Send,
        *,
        batch: int = 5000,
        keep: float = 600.0,
    ) -> None:
        self._pool = pool
        self.topic = topic
        self._send = send
        self.batch = batch  # events a flush sends at once (more when one write staged more)
        self.keep = keep  # seconds a published batch stays (its writer reads its positions back)
        self._pruned_at = time.monotonic()
        self._lock = f"ingest.outbox:{topic}"  # the advisory lock of this topic's one flush

    async def install(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.outbox.schema'))")
            await conn.execute(_SCHEMA)
            await conn.execute(_FROM_ROWS)

    async def put(self, conn: asyncpg.Connection, events: Sequence[EncodedEvent]) -> list[int]:
        """Insert the events, as one batch, in the caller's open transaction; its id."""
        if not events:
            return []
        batch_id: int = await conn.fetchval(
            'INSERT INTO ingest.outbox_batches (topic, n, event_ids, keys, "values", types, '
            "versions) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            self.topic,
            len(events),
            [e.id for e in events],
            [str(e.subject).encode() for e in events],
            [e.value for e in events],
            [e.type for e in events],
            [e.schema_version for e in events],
        )
        return [batch_id]

    async def flush(self, wanted: Sequence[int] = ()) -> list[Position]:
        """Publish every committed, unpublished batch in id order; the positions of the events
        of the `wanted` batches, in order."""
        async with self._pool.acquire() as conn:
            keeps_session_state(conn)
            await conn.execute("SELECT pg_advisory_lock(hashtext($1))", self._lock)
            try:
                while await self._publish_some(conn) >= self.batch:
                    pass
                found = {
                    r["id"]: [
                        Position(p, o) for p, o in zip(r["partitions"], r["offsets"], strict=True)
                    ]
                    for r in await conn.fetch(
                        "SELECT id, partitions, offsets FROM ingest.outbox_batches "
                        "WHERE id = ANY($1::bigint[]) AND partitions IS NOT NULL",
                        list(wanted),
                    )
                }
                await self._prune(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock)
        missing = [i for i in wanted if i not in found]
        if missing:
            raise OutboxError(f"outbox batches {missing[:5]} were not committed")
        return [position for i in wanted for position in found[i]]

    async def pending(self, older_than: float) -> bool:
        """Whether a committed batch has waited longer than `older_than` seconds (its writer
        died)."""
        async with self._pool.acquire() as conn:
            waiting: bool = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ingest.outbox_batches WHERE topic = $1 "
                "AND partitions IS NULL "
                "AND created_at < clock_timestamp() - make_interval(secs => $2))",
                self.topic,
                older_than,
            )
        return waiting

    async def _publish_some(self, conn: asyncpg.Connection) -> int:
        """Send the oldest unpublished batches, about `batch` events' worth (at least one whole
        batch); record their positions; return how many events went."""
        rows = await conn.fetch(
            'SELECT id, event_ids, keys, "values", types, versions FROM ('
            "  SELECT id, n, sum(n) OVER (ORDER BY id) AS upto FROM ingest.outbox_batches "
            "  WHERE topic = $1 AND partitions IS NULL"
            ") w JOIN ingest.outbox_batches USING (id) WHERE w.upto - w.n < $2 ORDER BY id",
            self.topic,
            self.batch,
        )
        if not rows:
            return 0
        records = [
            (key, value, ce_headers(event_id, event_type, version))
            for r in rows
            for event_id, key, value, event_type, version in zip(
                r["event_ids"], r["keys"], r["values"], r["types"], r["versions"], strict=True
            )
        ]
        positions = await self._send(records)
        marks, start = [], 0
        for r in rows:
            mine = positions[start : start + len(r["event_ids"])]
            start += len(mine)
            marks.append((r["id"], [p.partition for p in mine], [p.offset for p in mine]))
        await conn.executemany(
            "UPDATE ingest.outbox_batches SET partitions = $2, offsets = $3 WHERE id = $1", marks
        )
        log.debug("outbox.published", events=len(records), batches=len(rows))
        return len(records)

    async def _prune(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self._pruned_at < self.keep / 10:
            return
        self._pruned_at = now
        await conn.execute(
            "DELETE FROM ingest.outbox_batches WHERE topic = $1 AND partitions IS NOT NULL "
            "AND created_at < clock_timestamp() - make_interval(secs => $2)",
            self.topic,
            self.keep,
        )
