"""The Kafka event log: canonical topic keyed by profile id, offsets owned by PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Sequence

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import ConsumerRecord, RecordMetadata

from contracts import CANONICAL_TOPIC, EncodedEvent, Event, as_encoded
from services.eventlog.kafka_ends import EndsProbe
from services.eventlog.murmur2 import murmur2
from services.eventlog.outbox import Outbox, Record
from services.eventlog.port import (
    OUTBOX,
    LogConsumer,
    LogRecord,
    Position,
    SeekSource,
    Staged,
)
from services.outages import ROLE_TRANSIENT

log = structlog.get_logger(__name__)


# A catch-up poll asks for up to 40,000 records, and it gets what the last fetches brought: at
# 4 MB a partition it often came back short (200,000 profile events in 13-14 batches, 8-9 at
# 16 MB, +27 % in two pairs). At most 64 MB over 4 partitions (and 50 MB a fetch response,
# aiokafka's default) for a process of its own.
FETCH_BYTES_PER_PARTITION = 16 * 1024 * 1024


SWEEP_FLUSH_WAIT = 30.0  # seconds a sweep's flush may wait for the broker


class KafkaLog:
    """EventLog on a Kafka topic; an idempotent producer with acks=all."""

    unique_ids = False  # an append retried by its caller is a second record: readers dedupe

    def __init__(
        self,
        bootstrap: str,
        topic: str = CANONICAL_TOPIC,
        partitions: int = 4,
        *,
        pool: asyncpg.Pool | None = None,
        sweep_every: float = 2.0,
        group_instance: str | None = None,
        publish_wait: float = 5.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._group_instance = group_instance  # consumers' static name in their group, if any
        self.topic = topic
        self._partitions = partitions
        self._producer: AIOKafkaProducer | None = None
        # without a pool the log only appends (benchmarks, tools); `stage` needs the outbox
        self._outbox = Outbox(pool, topic, self._send) if pool is not None else None
        self._sweep_every = sweep_every
        self._publish_wait = publish_wait
        self._away_until = 0.0  # until then, writers do not wait for the broker (`publish`)
        self._sweeper: asyncio.Task[None] | None = None
        self._ends = EndsProbe(bootstrap, topic)

    async def start(self) -> None:
        await ensure_topic(self._bootstrap, self.topic, self._partitions)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await self._producer.start()
        if self._outbox is not None:
            await self._outbox.install()
            self._sweeper = asyncio.create_task(self._sweep(self._outbox))

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        await self._ends.close()

    async def append(self, events: Sequence[Event | EncodedEvent]) -> list[Position]:
        return await self._send(
            [(str(e.subject).encode(), e.value, e.headers()) for e in _encoded(events)]
        )

    async def stage(
        self, conn: asyncpg.Connection, events: Sequence[Event | EncodedEvent]
    ) -> Staged:
        encoded = _encoded(events)
        batches = tuple(await self._require_outbox().put(conn, encoded))
        return Staged(outbox=batches, counts=(len(encoded),) if batches else ())

    async def publish(self, staged: Staged) -> list[Position]:
        """The staged events' positions once published; within `publish_wait` seconds at most.

        The events are committed to the outbox already. While the broker is away a flush waits
        for it (aiokafka retries its connections without end), and so would the writer, and
        with it an HTTP request. Past the wait the writer goes on with OUTBOX positions; the
        sweep publishes the batch once the broker is back. After such a wait, the writes of the
        next `publish_wait` seconds do not wait at all: one write in that time pays for the
        outage, not every one (and none holds a pooled connection meanwhile).
        """
        if not staged.outbox:
            return list(staged.positions)
        if time.monotonic() < self._away_until:
            return _pending(staged)
        try:
            positions = await asyncio.wait_for(
                self._require_outbox().flush(staged.outbox), self._publish_wait
            )
        except (TimeoutError, KafkaError) as exc:
            self._away_until = time.monotonic() + self._publish_wait
            log.warning(
                "outbox.publish_deferred", batches=len(staged.outbox), error=type(exc).__name__
            )
            return _pending(staged)
        self._away_until = 0.0
        return positions

    async def _send(self, records: Sequence[Record]) -> list[Position]:
        return await send_batched(self._require_producer(), self.topic, records)

    async def _sweep(self, outbox: Outbox) -> None:
        """Publish what a writer committed but did not publish (it died in between, or stopped
        waiting for an absent broker)."""
        while True:
            await asyncio.sleep(self._sweep_every)
            try:
                if await outbox.pending(older_than=self._sweep_every):
                    # bounded, so that a flush stuck on an absent broker lets go of its
                    # connection and lock now and then, and the outage shows in the log
                    await asyncio.wait_for(outbox.flush(), SWEEP_FLUSH_WAIT)
                    self._away_until = 0.0  # the broker is back: writers wait for it again
            except (*ROLE_TRANSIENT, asyncpg.PostgresError) as exc:  # the next round retries
                log.warning("outbox.sweep_failed", error=type(exc).__name__)

    async def append_raw(self, key: bytes, value: bytes) -> Position:
        meta = await self._require_producer().send_and_wait(self.topic, value, key=key)
        return Position(meta.partition, meta.offset)

    async def ends(self) -> dict[int, int]:
        return await self._ends.ends()

    def consumer(self, group: str, on_assign: SeekSource) -> LogConsumer:
        return KafkaLogConsumer(
            self._bootstrap,
            self.topic,
            group,
            on_assign,
            instance=static_name(self._group_instance, self.topic),
        )

    def _require_outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("this KafkaLog has no PostgreSQL pool for its outbox")
        return self._outbox

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaLog.start() was not awaited")
        return self._producer


def _pending(staged: Staged) -> list[Position]:
    """An OUTBOX position for each staged event: where the sweep will publish it is not known."""
    return [
        Position(OUTBOX, batch)
        for batch, count in zip(staged.outbox, staged.counts, strict=True)
        for _ in range(count)
    ]


def _encoded(events: Sequence[Event | EncodedEvent]) -> list[EncodedEvent]:
    return [as_encoded(e) for e in events]


async def send_batched(
    producer: AIOKafkaProducer, topic: str, records: Sequence[Record]
) -> list[Position]:
    """Send in per-partition record batches built here, not one `send` per record.

    A `send` per record costs tens of microseconds of Python; a batch builder a fraction of it.
    Partitions are chosen as the default partitioner chooses them (murmur2 of the key), so a
    record lands where a plain `send` with the same key would put it, and keeps its key's order.
    """
    partitions = sorted(await producer.partitions_for(topic))
    routed: dict[int, list[int]] = {}
    for index, (key, _, _) in enumerate(records):
        routed.setdefault(partitions[_hashed(key) % len(partitions)], []).append(index)
    sent: list[tuple[asyncio.Future[RecordMetadata], int, list[int]]] = []
    for partition, indices in routed.items():
        builder, members = producer.create_batch(), list[int]()
        for index in indices:
            key, value, extra = records[index]
            if builder.append(timestamp=None, key=key, value=value, headers=extra) is None:
                sent.append((await _ship(producer, topic, builder, partition), partition, members))
                builder, members = producer.create_batch(), list[int]()
                if builder.append(timestamp=None, key=key, value=value, headers=extra) is None:
                    raise ValueError("a record is larger than a whole record batch")
            members.append(index)
        sent.append((await _ship(producer, topic, builder, partition), partition, members))
    positions: dict[int, Position] = {}
    for future, partition, members in sent:
        base = (await future).offset
        for relative, index in enumerate(members):
            positions[index] = Position(partition, base + relative)
    return [positions[index] for index in range(len(records))]


@functools.lru_cache(maxsize=1 << 18)
def _hashed(key: bytes) -> int:
    """The default partitioner's hash of a key; cached: murmur2 in Python costs microseconds
    a key and a busy profile's key comes back again and again."""
    return murmur2(key) & 0x7FFFFFFF


async def _ship(
    producer: AIOKafkaProducer, topic: str, builder: BatchBuilder, partition: int
) -> asyncio.Future[RecordMetadata]:
    builder.close()
    future: asyncio.Future[RecordMetadata] = await producer.send_batch(
        builder, topic, partition=partition
    )
    return future


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create the topic with `partitions` partitions unless it exists."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


class _SeekOnAssign(ConsumerRebalanceListener):  # type: ignore[misc]
    """On every assignment, seek to the checkpoints stored in PostgreSQL (never Kafka's)."""

    def __init__(self, owner: KafkaLogConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._owner.revoked([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._owner.seek_assigned([tp.partition for tp in assigned])


class KafkaLogConsumer:
    """A group member without auto-commit; positions come from the owner's checkpoints."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        on_assign: SeekSource,
        *,
        instance: str | None = None,
    ) -> None:
        self._topic = topic
        self._on_assign = on_assign
        self._sought: set[int] = set()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=FETCH_BYTES_PER_PARTITION,
            session_timeout_ms=10_000,
            # members learn of a rebalance at their next heartbeat: a member that starts (or
            # is restarted) got its partitions 1 s after the others at 1,000 ms; two workers
            # held all four 1.52-1.65 s after start at 250 ms, 2.26-2.32 s at 1,000
            heartbeat_interval_ms=250,
            # a static member (`--workers`): restarted under the same name it takes its
            # partitions back at once, with no rebalance of the others (`services.workers`)
            group_instance_id=instance,
        )

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe([self._topic], listener=_SeekOnAssign(self))

    async def stop(self) -> None:
        await stop_leaving(self._consumer)

    async def poll(self, max_records: int, max_wait: float) -> list[LogRecord]:
        unsought = [
            tp.partition for tp in self._consumer.assignment() if tp.partition not in self._sought
        ]
        if unsought:  # assigned, but reading its checkpoints failed (the database away): again
            await self.seek_assigned(unsought)
        records = self._records(
            await self._consumer.getmany(timeout_ms=int(max_wait * 1000), max_records=max_records)
        )
        # one getmany hands out at most what one fetch brought; a consumer that is behind also
        # takes what later fetches already brought, up to max_records, without waiting
        while records and len(records) < max_records:
            more = self._records(
                await self._consumer.getmany(timeout_ms=0, max_records=max_records - len(records))
            )
            if not more:
                break
            records += more
        return records

    def _records(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> list[LogRecord]:
        """The records of partitions sought to their checkpoints: one assigned but not sought
        yet (its checkpoints unread, or a poll that beat the seek) was read from where the group
        left it or from the log's start; its records come again from the checkpoint."""
        sought = self._sought
        return [
            LogRecord(tp.partition, m.offset, m.key, m.value)
            for tp, messages in batches.items()
            if tp.partition in sought
            for m in messages
        ]

    async def seek(self, positions: dict[int, int]) -> None:
        for partition, offset in positions.items():
            self._consumer.seek(TopicPartition(self._topic, partition), offset)

    async def seek_assigned(self, partitions: list[int]) -> None:
        await self.seek(await self._on_assign(partitions))
        self._sought.update(partitions)

    def revoked(self, partitions: list[int]) -> None:
        self._sought.difference_update(partitions)

    def assignment(self) -> frozenset[int]:
        return frozenset(tp.partition for tp in self._consumer.assignment())


def static_name(instance: str | None, topic: str) -> str | None:
    """A consumer's static name in its group (KIP-345), or None for a dynamic member.

    The topic is part of it: a group that lost a static member keeps its assignment for a
    session, and one started again under the same name for another topic was handed that
    assignment back, which aiokafka refuses (an assertion in its coordinator, a crash).
    """
    return None if instance is None else f"{instance}.{topic}"


async def stop_leaving(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer, leaving its group even as a static member.

    aiokafka sends no LeaveGroup for a static member, as Kafka's own client: its partitions
    then wait a whole session (10 s) before the others get them. A static member only has to
    stay through a crash, when it does not stop at all and is started again under its name;
    one that stops cleanly leaves like a dynamic one, and the broker accepts a LeaveGroup by
    member id from it. Without that private attribute (another aiokafka) it stops as it would.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and hasattr(coordinator, "_group_instance_id"):
        coordinator._group_instance_id = None
    await consumer.stop()
