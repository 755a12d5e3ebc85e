"""The transactional outbox of the Kafka log: events committed with the write that made them.

A Kafka append cannot join a PostgreSQL transaction. A write that changes ingest state (a
subscription list, identities, a database's structure, a resource) and has events to publish
inserts them here in its own transaction; once it has committed, `flush` publishes every
unpublished row, oldest first, and records where each one landed. A writer that dies between
its commit and its flush leaves rows that the next flush publishes (any process's: every
process with a Kafka log sweeps now and then), so a committed write's events are never lost
and a rolled-back write's events are never published.

One flush at a time per topic in the whole deployment (a PostgreSQL advisory lock): rows go
out in id order, so two writes of one profile that serialise on a write-model lock keep their
order on the log. A flush that dies after Kafka acknowledged a row but before recording its
position publishes it again: here the log is at least once, and the projector drops a repeated
event id.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import structlog

from contracts.encoded import EncodedEvent, ce_headers
from services.eventlog.port import Position

log = structlog.get_logger(__name__)

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers
Send = Callable[[Sequence[Record]], Awaitable[list[Position]]]

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE IF NOT EXISTS ingest.outbox (
    id             bigserial   PRIMARY KEY,
    topic          text        NOT NULL,
    event_id       uuid        NOT NULL,
    key            bytea       NOT NULL,
    value          bytea       NOT NULL,
    type           text        NOT NULL,
    schema_version int         NOT NULL,
    partition      int,
    "offset"       bigint,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON ingest.outbox (topic, id)
    WHERE partition IS NULL;
"""


class OutboxError(RuntimeError):
    """A staged row has no recorded position after a flush (it was never committed)."""


class Outbox:
    """Rows put in a caller's transaction, published to Kafka by `flush` after its commit."""

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
        self.batch = batch
        self.keep = keep  # seconds a published row stays (its writer reads its position back)
        self._pruned_at = time.monotonic()
        self._lock = f"ingest.outbox:{topic}"  # the advisory lock of this topic's one flush

    async def install(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.outbox.schema'))")
            await conn.execute(_SCHEMA)

    async def put(self, conn: asyncpg.Connection, events: Sequence[EncodedEvent]) -> list[int]:
        """Insert the events in the caller's open transaction; their row ids, in order."""
        if not events:
            return []
        rows = await conn.fetch(
            "INSERT INTO ingest.outbox (topic, event_id, key, value, type, schema_version) "
            "SELECT $1, i, k, v, t, s FROM unnest($2::uuid[], $3::bytea[], $4::bytea[], "
            "$5::text[], $6::int[]) WITH ORDINALITY AS u(i, k, v, t, s, n) ORDER BY n "
            "RETURNING id",
            self.topic,
            [e.id for e in events],
            [str(e.subject).encode() for e in events],
            [e.value for e in events],
            [e.type for e in events],
            [e.schema_version for e in events],
        )
        # ids come from one sequence, drawn in the insert's order: ascending is input order
        return sorted(r["id"] for r in rows)

    async def flush(self, wanted: Sequence[int] = ()) -> list[Position]:
        """Publish every committed, unpublished row in id order; the positions of `wanted`."""
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(hashtext($1))", self._lock)
            try:
                while await self._publish_some(conn) == self.batch:
                    pass
                found = {
                    r["id"]: Position(r["partition"], r["offset"])
                    for r in await conn.fetch(
                        'SELECT id, partition, "offset" FROM ingest.outbox '
                        "WHERE id = ANY($1::bigint[]) AND partition IS NOT NULL",
                        list(wanted),
                    )
                }
                await self._prune(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock)
        missing = [i for i in wanted if i not in found]
        if missing:
            raise OutboxError(f"outbox rows {missing[:5]} were not committed")
        return [found[i] for i in wanted]

    async def pending(self, older_than: float) -> bool:
        """Whether a committed row has waited longer than `older_than` seconds (a writer died)."""
        async with self._pool.acquire() as conn:
            waiting: bool = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ingest.outbox WHERE topic = $1 "
                "AND partition IS NULL "
                "AND created_at < clock_timestamp() - make_interval(secs => $2))",
                self.topic,
                older_than,
            )
        return waiting

    async def _publish_some(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            "SELECT id, event_id, key, value, type, schema_version FROM ingest.outbox "
            "WHERE topic = $1 AND partition IS NULL ORDER BY id LIMIT $2",
            self.topic,
            self.batch,
        )
        if not rows:
            return 0
        positions = await self._send(
            [
                (r["key"], r["value"], ce_headers(r["event_id"], r["type"], r["schema_version"]))
                for r in rows
            ]
        )
        await conn.execute(
            'UPDATE ingest.outbox o SET partition = u.p, "offset" = u.o '
            "FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS u(id, p, o) WHERE o.id = u.id",
            [r["id"] for r in rows],
            [p.partition for p in positions],
            [p.offset for p in positions],
        )
        log.debug("outbox.published", events=len(rows))
        return len(rows)

    async def _prune(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self._pruned_at < self.keep / 10:
            return
        self._pruned_at = now
        await conn.execute(
            "DELETE FROM ingest.outbox WHERE topic = $1 AND partition IS NOT NULL "
            "AND created_at < clock_timestamp() - make_interval(secs => $2)",
            self.topic,
            self.keep,
        )
