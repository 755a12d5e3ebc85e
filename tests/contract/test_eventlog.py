"""One contract for the event-log port, run against both adapters (DESIGN decision 1).

Ordering per key, resume from a stored position, redelivery of what was not advanced, and
idempotent append (a retried event is applied once).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from contracts import decode
from projections import read_models
from services.eventlog.kafka import KafkaLog
from services.eventlog.port import EventLog, LogConsumer, LogRecord
from services.eventlog.postgres import PostgresLog
from services.projector import Projector
from tests.factories import imported
from tests.pg import migrated_pool

SCHEMA = "read_models"


async def drain(consumer: LogConsumer, count: int, within: float = 30.0) -> list[LogRecord]:
    """Poll until `count` records arrived or `within` seconds passed."""
    got: list[LogRecord] = []
    deadline = time.monotonic() + within
    while len(got) < count and time.monotonic() < deadline:
        got += await consumer.poll(1000, 0.2)
    return got


async def _of_key(
    log: EventLog, pid: uuid.UUID, count: int, within: float = 30.0
) -> list[LogRecord]:
    """Records of one profile from the start of the log, once `count` arrived or time ran out."""
    consumer = log.consumer(f"g-{uuid.uuid4().hex}", starting_at())
    await consumer.start()
    got: list[LogRecord] = []
    try:
        deadline = time.monotonic() + within
        while len(got) < count and time.monotonic() < deadline:
            got += [r for r in await consumer.poll(1000, 0.2) if r.key == str(pid).encode()]
    finally:
        await consumer.stop()
    return got


def starting_at(positions: dict[int, int] | None = None):  # type: ignore[no-untyped-def]
    async def on_assign(partitions: Sequence[int]) -> dict[int, int]:
        return {p: (positions or {}).get(p, 0) for p in partitions}

    return on_assign


class EventLogContract:
    """Subclass once per adapter and provide the `log` and `pool` fixtures."""

    async def test_events_of_one_profile_come_back_in_append_order(self, log: EventLog) -> None:
        pids = [uuid.uuid4() for _ in range(5)]
        events = [imported(pids[i % 5], i) for i in range(50)]
        for chunk in (events[:20], events[20:]):
            await log.append(chunk)
        consumer = log.consumer(f"g-{uuid.uuid4().hex}", starting_at())
        await consumer.start()
        try:
            records = await drain(consumer, 50)
        finally:
            await consumer.stop()
        assert len(records) == 50
        per_profile: dict[uuid.UUID, list[uuid.UUID]] = {}
        for r in records:
            e = decode(r.value)
            assert r.key == str(e.subject).encode()
            per_profile.setdefault(e.subject, []).append(e.id)
        for pid in pids:
            assert per_profile[pid] == [e.id for e in events if e.subject == pid]

    async def test_each_returned_position_holds_its_event(self, log: EventLog) -> None:
        """Positions are where the events are read back, past one record batch (256 KiB) and with
        one event larger than a whole batch."""
        pids = [uuid.uuid4() for _ in range(40)]
        padding = "x" * 600
        events = [imported(pids[i % 40], i, fields={"note": padding}) for i in range(2000)]
        events[1000] = imported(pids[0], 1000, fields={"note": "x" * 400_000})  # > one batch
        positions = await log.append(events)
        assert len(positions) == len(events)
        wanted = {e.id for e in events}
        at: dict[tuple[int, int], uuid.UUID] = {}
        consumer = log.consumer(f"g-{uuid.uuid4().hex}", starting_at())
        await consumer.start()
        try:
            deadline = time.monotonic() + 60
            while not wanted <= set(at.values()) and time.monotonic() < deadline:
                for r in await consumer.poll(5000, 0.2):
                    at[(r.partition, r.offset)] = decode(r.value).id
        finally:
            await consumer.stop()
        assert [at.get((p.partition, p.offset)) for p in positions] == [e.id for e in events]

    async def test_staged_events_reach_the_log_with_their_commit(
        self, log: EventLog, pool: asyncpg.Pool
    ) -> None:
        """A write and its events in one transaction; `publish` says where each one landed."""
        pid = uuid.uuid4()
        events = [imported(pid, i) for i in range(5)]
        async with pool.acquire() as conn, conn.transaction():
            staged = await log.stage(conn, events)
        positions = await log.publish(staged)
        records = await _of_key(log, pid, 5)
        assert [decode(r.value).id for r in records] == [e.id for e in events]
        assert [(r.partition, r.offset) for r in records] == [
            (p.partition, p.offset) for p in positions
        ]

    async def test_staged_events_of_a_rolled_back_write_never_reach_the_log(
        self, log: EventLog, pool: asyncpg.Pool
    ) -> None:
        pid = uuid.uuid4()
        lost = imported(pid, 0)
        async with pool.acquire() as conn:
            failing = conn.transaction()
            await failing.start()
            await log.stage(conn, [lost])
            await failing.rollback()  # the write failed after staging its events
            async with conn.transaction():
                staged = await log.stage(conn, [imported(pid, 1)])
        await log.publish(staged)
        records = await _of_key(log, pid, 2, within=3.0)
        assert lost.id not in {decode(r.value).id for r in records}
        assert len(records) == 1

    async def test_events_committed_but_never_published_still_reach_the_log(
        self, log: EventLog, pool: asyncpg.Pool
    ) -> None:
        """The writer dies between its commit and `publish`: its events are not lost."""
        pid = uuid.uuid4()
        events = [imported(pid, i) for i in range(3)]
        async with pool.acquire() as conn, conn.transaction():
            await log.stage(conn, events)
        records = await _of_key(log, pid, 3)  # Kafka: the outbox sweep publishes them
        assert [decode(r.value).id for r in records] == [e.id for e in events]

    async def test_ends_are_one_past_the_last_append_of_each_partition(self, log: EventLog) -> None:
        positions = await log.append([imported(uuid.uuid4(), i) for i in range(12)])
        ends = await log.ends()
        for position in positions:
            assert ends[position.partition] > position.offset
        last = {p.partition: p.offset for p in positions}  # appends land in order
        assert all(ends[p] == offset + 1 for p, offset in last.items())

    async def test_consumer_resumes_from_the_stored_position(self, log: EventLog) -> None:
        pid = uuid.uuid4()  # one key: one partition, so offsets are comparable
        positions = await log.append([imported(pid, i) for i in range(10)])
        partition = positions[0].partition
        resume_at = positions[6].offset
        consumer = log.consumer(f"g-{uuid.uuid4().hex}", starting_at({partition: resume_at}))
        await consumer.start()
        try:
            records = await drain(consumer, 4)
            extra = await consumer.poll(1000, 0.5)
        finally:
            await consumer.stop()
        assert [r.offset for r in records] == [p.offset for p in positions[6:]]
        assert extra == []

    async def test_a_position_unreadable_at_assignment_is_read_again_before_records(
        self, log: EventLog
    ) -> None:
        """The checkpoints are read when partitions are assigned; if that fails (the database
        away), the consumer reads them again before it hands out any record, never delivering
        from elsewhere (the log's start, the group's last position)."""
        pid = uuid.uuid4()
        positions = await log.append([imported(pid, i) for i in range(10)])
        partition, resume_at = positions[0].partition, positions[6].offset
        calls = 0

        async def on_assign(partitions: Sequence[int]) -> dict[int, int]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise OSError("the database is away")
            return {p: resume_at if p == partition else 0 for p in partitions}

        consumer = log.consumer(f"g-{uuid.uuid4().hex}", on_assign)
        await consumer.start()
        got: list[LogRecord] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < 4 and time.monotonic() < deadline:
                try:
                    got += await consumer.poll(1000, 0.2)
                except OSError:
                    continue  # a poll may fail while the positions cannot be read
        finally:
            await consumer.stop()
        assert calls >= 2
        assert [r.offset for r in got] == [p.offset for p in positions[6:]]

    async def test_what_was_not_advanced_is_delivered_again(self, log: EventLog) -> None:
        await log.append([imported(uuid.uuid4(), i) for i in range(8)])
        group = f"g-{uuid.uuid4().hex}"
        first = log.consumer(group, starting_at())
        await first.start()
        try:
            once = await drain(first, 8)
        finally:
            await first.stop()
        second = log.consumer(group, starting_at())  # nothing stored: same start
        await second.start()
        try:
            again = await drain(second, 8)
        finally:
            await second.stop()
        assert sorted((r.partition, r.offset) for r in again) == sorted(
            (r.partition, r.offset) for r in once
        )

    async def test_unique_ids_says_whether_a_repeated_append_is_stored_once(
        self, log: EventLog
    ) -> None:
        """What lets a projector on the PostgreSQL log skip its own dedupe (one row per event)."""
        event = imported(uuid.uuid4(), 0)
        first = await log.append([event])
        again = await log.append([event])
        assert (first == again) is log.unique_ids
        consumer = log.consumer(f"g-{uuid.uuid4().hex}", starting_at())
        await consumer.start()
        seen = 0
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                records = await consumer.poll(5000, 0.5)
                if not records and seen:
                    break
                seen += sum(r.key == str(event.subject).encode() for r in records)
        finally:
            await consumer.stop()
        assert seen == (1 if log.unique_ids else 2)

    async def test_a_retried_append_is_applied_once(
        self, log: EventLog, pool: asyncpg.Pool
    ) -> None:
        pid = uuid.uuid4()
        event = imported(pid, 0, fields={"n": 1})
        await log.append([event])
        await log.append([event])  # a publisher retry of the same event id
        await log.append([imported(pid, 1, created=False, fields={"m": 2})])
        projector = Projector(pool, log, read_models.NAME, read_models.project, poll_timeout=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(projector.run(stop))
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                version = await pool.fetchval(
                    "SELECT version FROM profiles WHERE profile_id = $1", pid
                )
                if version is not None and version >= 2:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # a late duplicate would have landed by now
        finally:
            stop.set()
            await task
        assert await pool.fetchval("SELECT version FROM profiles WHERE profile_id = $1", pid) == 2


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as p:
        yield p


@pytest.mark.postgres
class TestPostgresLog(EventLogContract):
    @pytest.fixture
    async def log(self, pool: asyncpg.Pool) -> AsyncIterator[EventLog]:
        log = PostgresLog(pool)
        await log.start()
        yield log
        await log.stop()

    async def test_an_append_wakes_a_waiting_reader_at_once(self, log: EventLog) -> None:
        """LISTEN/NOTIFY: a poll waiting up to 10 s returns as soon as another append commits."""
        consumer = log.consumer(f"g-{uuid.uuid4().hex}", starting_at())
        await consumer.start()
        try:
            await consumer.poll(1000, 0.5)  # assigned, and past whatever the log held
            end = (await log.ends())[0]
            await consumer.seek({0: end})
            waiting = asyncio.create_task(consumer.poll(1000, 10.0))
            await asyncio.sleep(0.3)
            began = time.monotonic()
            await log.append([imported(uuid.uuid4(), 0)])
            records = await waiting
            waited = time.monotonic() - began
        finally:
            await consumer.stop()
        assert len(records) == 1
        assert waited < 2.0  # woken, not timed out at 10 s

    async def test_concurrent_appends_become_visible_in_position_order(
        self, log: EventLog, pool: asyncpg.Pool
    ) -> None:
        """Gap-safety: a reader never sees position n+1 before n (the sequence pitfall)."""
        seen_max = -1
        violations = 0
        done = asyncio.Event()

        async def reader() -> None:
            nonlocal seen_max, violations
            async with pool.acquire() as conn:
                while not done.is_set():
                    rows = await conn.fetch(
                        "SELECT position FROM eventlog.events "
                        "WHERE position > $1 ORDER BY position",
                        seen_max,
                    )
                    for r in rows:
                        if r["position"] != seen_max + 1:
                            violations += 1
                        seen_max = r["position"]

        async def writer(n: int) -> None:
            for i in range(25):
                await log.append([imported(uuid.uuid4(), i) for _ in range(n)])

        read = asyncio.create_task(reader())
        await asyncio.gather(*(writer(k) for k in (1, 2, 3, 5, 8, 13)))
        done.set()
        await read
        total = await pool.fetchval("SELECT count(*) FROM eventlog.events")
        assert total == 25 * (1 + 2 + 3 + 5 + 8 + 13)
        assert violations == 0
        assert await pool.fetchval("SELECT max(position) FROM eventlog.events") == total - 1


@pytest.mark.kafka
@pytest.mark.postgres
class TestKafkaLog(EventLogContract):
    @pytest.fixture
    async def log(self, kafka_bootstrap: str, pool: asyncpg.Pool) -> AsyncIterator[EventLog]:
        log = KafkaLog(
            kafka_bootstrap,
            topic=f"test.events.{uuid.uuid4().hex}",
            partitions=3,
            pool=pool,
            sweep_every=0.5,
        )
        await log.start()
        yield log
        await log.stop()

    async def test_ends_keep_one_probe_consumer_until_stopped(self, log: EventLog) -> None:
        """`/readyz` and `/metrics` ask for the ends every few seconds: one consumer serves them
        all (it used to be an admin client and a consumer opened per call); a probe cut short
        closes it, and the next one opens it again."""
        assert isinstance(log, KafkaLog)
        pid = uuid.uuid4()
        first = await log.append([imported(pid, 0)])
        probe = log._ends
        assert (await log.ends())[first[0].partition] == first[0].offset + 1
        opened = probe._consumer
        assert opened is not None
        second = await log.append([imported(pid, 1)])
        assert (await log.ends())[second[0].partition] == second[0].offset + 1
        assert probe._consumer is opened  # the same client, and offsets that moved on
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await log.ends()
        assert not probe.open  # cut short: closed, not left half-way
        assert (await log.ends())[second[0].partition] == second[0].offset + 1
        await log.stop()
        assert not probe.open
