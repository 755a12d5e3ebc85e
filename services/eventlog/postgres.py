"""The PostgreSQL event log: the embedded default, one partition, gap-safe positions.

Positions come from a single counter row that every append locks until commit, so appends are
serialised and a reader never sees position n+1 before n is visible (the sequence pitfall).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from uuid import UUID

import asyncpg

from contracts import CANONICAL_TOPIC, EncodedEvent, Event, as_encoded
from services.eventlog.port import LogConsumer, LogRecord, Position, SeekSource, Staged
from services.outages import ROLE_TRANSIENT
from services.sessions import keeps_session_state

_CHANNEL = "eventlog_append"
_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS eventlog;
CREATE TABLE IF NOT EXISTS eventlog.head (one boolean PRIMARY KEY DEFAULT true CHECK (one),
                                          next_position bigint NOT NULL);
INSERT INTO eventlog.head (next_position) VALUES (0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS eventlog.events (
    position bigint PRIMARY KEY,
    event_id uuid UNIQUE,
    key      bytea,
    value    bytea NOT NULL
);
"""


class PostgresLog:
    """EventLog on a PostgreSQL table; `partition` is always 0."""

    unique_ids = True  # event_id is UNIQUE and a repeated append returns the first position

    def __init__(self, pool: asyncpg.Pool, topic: str = CANONICAL_TOPIC) -> None:
        self._pool = pool
        self.topic = topic

    async def start(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('eventlog.schema'))")
            await conn.execute(_SCHEMA)

    async def stop(self) -> None:
        return None

    async def append(self, events: Sequence[Event | EncodedEvent]) -> list[Position]:
        async with self._pool.acquire() as conn, conn.transaction():
            return await self._append_encoded(conn, events)

    async def stage(
        self, conn: asyncpg.Connection, events: Sequence[Event | EncodedEvent]
    ) -> Staged:
        # the caller's transaction: its writes and these events commit or roll back as one
        return Staged(positions=tuple(await self._append_encoded(conn, events)) if events else ())

    async def publish(self, staged: Staged) -> list[Position]:
        return list(staged.positions)

    async def _append_encoded(
        self, conn: asyncpg.Connection, events: Sequence[Event | EncodedEvent]
    ) -> list[Position]:
        encoded = [as_encoded(e) for e in events]
        return await self._append_on(
            conn,
            [e.id for e in encoded],
            [str(e.subject).encode() for e in encoded],
            [e.value for e in encoded],
        )

    async def append_raw(self, key: bytes, value: bytes) -> Position:
        async with self._pool.acquire() as conn, conn.transaction():
            return (await self._append_on(conn, [None], [key], [value]))[0]

    async def ends(self) -> dict[int, int]:
        async with self._pool.acquire() as conn:
            head: int = await conn.fetchval("SELECT next_position FROM eventlog.head WHERE one")
        return {0: head}

    async def _append_on(
        self,
        conn: asyncpg.Connection,
        ids: Sequence[UUID | None],
        keys: Sequence[bytes],
        values: Sequence[bytes],
    ) -> list[Position]:
        start = await conn.fetchval(
            "UPDATE eventlog.head SET next_position = next_position "
            "WHERE one RETURNING next_position"
        )  # locks the counter row: appends are serialised from here to commit
        known = {
            r["event_id"]: r["position"]
            for r in await conn.fetch(
                "SELECT event_id, position FROM eventlog.events WHERE event_id = ANY($1::uuid[])",
                [i for i in ids if i is not None],
            )
        }
        positions: list[int] = []
        fresh: list[int] = []
        seen: dict[UUID, int] = dict(known)
        for i, event_id in enumerate(ids):
            if event_id is not None and event_id in seen:
                positions.append(seen[event_id])
                continue
            position = start + len(fresh)
            fresh.append(i)
            positions.append(position)
            if event_id is not None:
                seen[event_id] = position
        if fresh:
            await conn.copy_records_to_table(  # binary COPY: no per-element array checks
                "events",
                schema_name="eventlog",
                columns=["position", "event_id", "key", "value"],
                records=[(start + n, ids[i], keys[i], values[i]) for n, i in enumerate(fresh)],
            )
            await conn.execute(
                "UPDATE eventlog.head SET next_position = $1 WHERE one", start + len(fresh)
            )
            await conn.execute(f"NOTIFY {_CHANNEL}")
        return [Position(0, p) for p in positions]

    def consumer(self, group: str, on_assign: SeekSource) -> LogConsumer:
        return PostgresLogConsumer(self._pool, group, on_assign)


class PostgresLogConsumer:
    """Reads the log table from a position; one active consumer per group (advisory lock)."""

    def __init__(self, pool: asyncpg.Pool, group: str, on_assign: SeekSource) -> None:
        self._pool = pool
        self._group = group
        self._on_assign = on_assign
        self._next = 0
        self._assigned: frozenset[int] = frozenset()
        self._locked = False  # holds the group's advisory lock (once, however many tries)
        self._conn: asyncpg.Connection | None = None
        self._woken = asyncio.Event()

    async def start(self) -> None:
        await self._connect()

    async def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a connection lost in an outage: nothing to undo
                await conn.remove_listener(_CHANNEL, self._wake)
                if self._locked:
                    await conn.execute(
                        "SELECT pg_advisory_unlock(hashtext($1))", f"eventlog:{self._group}"
                    )
            await _release(self._pool, conn)
        self._assigned = frozenset()
        self._locked = False

    async def poll(self, max_records: int, max_wait: float) -> list[LogRecord]:
        try:
            if self._conn is None:
                await self._connect()
            if not await self._ensure_assigned(max_wait):
                return []
            records = await self._read(max_records)
            if not records:
                self._woken.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), max_wait)
                records = await self._read(max_records)
        except ROLE_TRANSIENT:
            # The session is gone, and with it the group's lock and the wake-ups: as a Kafka
            # consumer that left its group, this one has no partition until it is back and
            # has read its checkpoint again (the next poll).
            await self._lose_session()
            raise
        if records:
            self._next = records[-1].offset + 1
        return records

    async def _connect(self) -> None:
        conn = await self._pool.acquire()
        try:
            keeps_session_state(conn)  # it listens, and holds the group's lock
            await conn.add_listener(_CHANNEL, self._wake)
        except BaseException:
            await _release(self._pool, conn)
            raise
        self._conn = conn

    async def _lose_session(self) -> None:
        conn, self._conn = self._conn, None
        self._assigned = frozenset()
        self._locked = False
        if conn is not None:
            conn.terminate()  # a lock it might still hold must not outlive this
            await _release(self._pool, conn)

    async def seek(self, positions: dict[int, int]) -> None:
        self._next = positions.get(0, self._next)

    def assignment(self) -> frozenset[int]:
        return self._assigned

    async def _ensure_assigned(self, max_wait: float) -> bool:
        if self._assigned:
            return True
        assert self._conn is not None, "start() first"
        if not self._locked:
            got = await self._conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtext($1))", f"eventlog:{self._group}"
            )
            if not got:  # another process of this group is active: stand by
                await asyncio.sleep(max_wait)
                return False
            self._locked = True
        # assigned only once its position is read: a failed read is tried again at the next
        # poll, rather than reading from wherever the consumer stood
        self._next = (await self._on_assign([0]))[0]
        self._assigned = frozenset({0})
        return True

    async def _read(self, max_records: int) -> list[LogRecord]:
        assert self._conn is not None
        rows = await self._conn.fetch(
            "SELECT position, key, value FROM eventlog.events WHERE position >= $1 "
            "ORDER BY position LIMIT $2",
            self._next,
            max_records,
        )
        return [LogRecord(0, r["position"], r["key"], r["value"]) for r in rows]

    def _wake(self, *_: object) -> None:
        self._woken.set()


async def _release(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    """Give a connection back to the pool; one that broke in an outage is closed there."""
    with contextlib.suppress(Exception):
        await pool.release(conn)
