"""The projector runner: poll a batch, decode, apply it with its checkpoint in one transaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
import structlog

from contracts import DecodeError, Event, decode
from projections import checkpoints
from projections.batches import Batch, DeadLetter, Project, apply_batch, prune
from services.eventlog.port import EventLog, LogConsumer, LogRecord
from services.runtime import BetweenBatches

log = structlog.get_logger(__name__)

_RETRYABLE = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)
# a duplicate is a retried publish, minutes after the first at most; a week is generous
DEDUPE_WINDOW = timedelta(days=7)
# the largest batch the projector processes and rebuilds ask for while behind (`_next_ask`)
CATCH_UP_BATCH = 40_000


@dataclass
class ProjectorStats:
    """Counters a test or a benchmark can read while the runner works."""

    batches: int = 0
    applied: int = 0
    dead: int = 0
    fenced: int = 0
    pruned: int = 0


@dataclass
class Projector:
    """Runs one projection over one event log until `stop` is set."""

    pool: asyncpg.Pool
    log: EventLog
    name: str
    project: Project
    batch_size: int = 5000  # asked for at the head of the log, where latency matters
    max_batch: int = 0  # asked for at most while catching up (`_next_ask`); <= batch_size: never
    poll_timeout: float = 0.2
    group: str | None = None  # consumer group; default: the projection's name
    # the garbage collector runs between batches only (`BetweenBatches`): for a process of
    # its own; off where the projector shares its process (`profiles serve`)
    collect_between_batches: bool = False
    dedupe_window: timedelta = DEDUPE_WINDOW
    prune_every: float = 300.0  # seconds between prunes of the dedupe rows
    stats: ProjectorStats = field(default_factory=ProjectorStats)
    _pruned_at: float | None = None
    _expected: dict[int, int] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        consumer = self.log.consumer(self.group or self.name, self._on_assign)
        await consumer.start()
        log.info("projector.started", projection=self.name, topic=self.log.topic)
        ask = self.batch_size
        try:
            with BetweenBatches(self.collect_between_batches) as collector:
                while not stop.is_set():
                    records = await consumer.poll(ask, self.poll_timeout)
                    if records:
                        await self._handle(consumer, records)
                        collector.batch_done()
                    ask = self._next_ask(ask, len(records))
                    await self._prune()
        finally:
            await consumer.stop()
            log.info("projector.stopped", projection=self.name, **vars(self.stats))

    def _next_ask(self, asked: int, got: int) -> int:
        """How many records the next poll asks for: twice as many after a full poll, up to
        `max_batch`; `batch_size` again after any poll that was not full.

        A full poll means the projector is behind (a rebuild, a restart, a burst): larger
        batches then fold more events of one profile together and pay each batch's fixed costs
        once (a subscription replay ran about a quarter faster at 40,000 than at 5,000). At the
        head of the log polls come back short and batches stay small, so a read waiting on a
        consistency token is not kept waiting behind a large transaction.

        Off unless asked for (`profiles projector` and `profiles projections rebuild` ask for
        CATCH_UP_BATCH; `profiles serve` does not, its projector shares the API's event loop).
        """
        if got >= asked:
            return min(asked * 2, max(self.max_batch, self.batch_size))
        return self.batch_size

    async def _prune(self) -> None:
        """Now and then, forget dedupe rows past the window (logs that store ids once have none)."""
        now = time.monotonic()
        if self.log.unique_ids or (
            self._pruned_at is not None and now - self._pruned_at < self.prune_every
        ):
            return
        self._pruned_at = now
        try:
            async with self.pool.acquire() as conn:
                gone = await prune(conn, self.name, self.dedupe_window)
        except _RETRYABLE as exc:  # the next round tries again; folding goes on meanwhile
            log.warning("projector.prune_failed", projection=self.name, error=type(exc).__name__)
            return
        self.stats.pruned += gone
        if gone:
            log.info("projector.pruned", projection=self.name, rows=gone)

    async def _on_assign(self, partitions: Sequence[int]) -> dict[int, int]:
        async with self.pool.acquire() as conn:
            stored = await checkpoints.load(conn, self.name, self.log.topic, partitions)
        self._expected.update(stored)
        log.info("projector.assigned", projection=self.name, checkpoints=stored)
        return stored

    async def _handle(self, consumer: LogConsumer, records: list[LogRecord]) -> None:
        assigned = consumer.assignment()
        fresh = [
            r
            for r in records
            if r.partition in assigned and r.offset >= self._expected.get(r.partition, 0)
        ]
        if not fresh:
            return
        batch = _batch(fresh, self._expected, dedupe=not self.log.unique_ids)
        try:
            applied = await self._apply(batch)
        except checkpoints.Fenced as exc:
            self.stats.fenced += 1
            log.warning("projector.fenced", projection=self.name, detail=str(exc))
            await self._reseek(consumer)
            return
        except _RETRYABLE as exc:
            log.warning("projector.retry", projection=self.name, error=type(exc).__name__)
            await asyncio.sleep(0.5)
            await self._reseek(consumer)
            return
        except Exception as exc:  # a projection failed on some event: find it, do not stop
            log.error("projector.batch_failed", projection=self.name, error=type(exc).__name__)
            await self._isolate(consumer, fresh)
            return
        self._done(batch, applied)

    async def _isolate(self, consumer: LogConsumer, records: list[LogRecord]) -> bool:
        """Apply a failed batch half by half, halving a failing half again, until a record that
        fails alone is buried; False when the caller must stop (the consumer re-seeked).

        One bad record in n costs about 2·log2(n) transactions, not n: a catch-up batch holds
        tens of thousands. Halves keep the log's order, so every checkpoint move stays exact.
        """
        middle = len(records) // 2
        for part in (records[:middle], records[middle:]):
            if not part:
                continue
            batch = _batch(part, self._expected, dedupe=not self.log.unique_ids)
            try:
                applied = await self._apply(batch)
            except (checkpoints.Fenced, *_RETRYABLE):
                await self._reseek(consumer)
                return False
            except Exception as exc:
                if len(part) > 1:
                    if not await self._isolate(consumer, part):
                        return False
                    continue
                record = part[0]
                reason = f"projection failed: {type(exc).__name__}"  # never the values
                dead = DeadLetter(record.partition, record.offset, reason, record.value)
                batch = Batch(events=[], dead=[dead], moves=batch.moves, dedupe=batch.dedupe)
                applied = await self._apply(batch)
                log.error("projector.buried", projection=self.name, offset=record.offset)
            self._done(batch, applied)
        return True

    async def _apply(self, batch: Batch) -> int:
        async with self.pool.acquire() as conn:
            return await apply_batch(conn, self.name, self.log.topic, batch, self.project)

    def _done(self, batch: Batch, applied: int) -> None:
        for partition, (_, new) in batch.moves.items():
            self._expected[partition] = new
        self.stats.batches += 1
        self.stats.applied += applied
        self.stats.dead += len(batch.dead)

    async def _reseek(self, consumer: LogConsumer) -> None:
        partitions = sorted(consumer.assignment())
        if partitions:
            await consumer.seek(await self._on_assign(partitions))


def _batch(records: Sequence[LogRecord], expected: dict[int, int], *, dedupe: bool) -> Batch:
    events: list[Event] = []
    dead: list[DeadLetter] = []
    last: dict[int, int] = {}
    for record in records:
        last[record.partition] = record.offset
        try:
            event = decode(record.value)
        except DecodeError as exc:
            dead.append(DeadLetter(record.partition, record.offset, exc.reason, record.value))
            continue
        if record.key != str(event.subject).encode():
            # A record keyed otherwise may sit in another partition than its profile's others,
            # which would break per-profile order: refuse it rather than fold it out of order.
            dead.append(
                DeadLetter(record.partition, record.offset, "key is not the subject", record.value)
            )
            continue
        events.append(event)
    moves = {p: (expected.get(p, 0), offset + 1) for p, offset in last.items()}
    return Batch(events=events, dead=dead, moves=moves, dedupe=dedupe)
