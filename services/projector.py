"""The projector runner: poll a batch, decode, apply it with its checkpoint in one transaction."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple
from uuid import UUID

import asyncpg
import structlog

from contracts import DecodeError, Event, decode
from projections import checkpoints
from projections.batches import Batch, DeadLetter, Project, apply_batch, prune
from projections.store import store_id
from services.eventlog.port import EventLog, LogConsumer, LogRecord
from services.outages import ROLE_TRANSIENT, Backoff, pause
from services.runtime import BetweenBatches

log = structlog.get_logger(__name__)

# a duplicate is a retried publish, minutes after the first at most; a week is generous
DEDUPE_WINDOW = timedelta(days=7)
# the largest batch the projector processes and rebuilds ask for while behind (`_next_ask`)
CATCH_UP_BATCH = 40_000
# records decoded ahead between two turns of the apply (`_handle_reading_ahead`): about 2 ms
READ_AHEAD_SLICE = 200


@dataclass
class ProjectorStats:
    """Counters a test or a benchmark can read while the runner works."""

    batches: int = 0
    applied: int = 0
    dead: int = 0
    fenced: int = 0
    pruned: int = 0
    retries: int = 0  # rounds that failed on an outage and were tried again


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
    group: str | None = None  # consumer group; default: `store_group(pool, name)`
    # the garbage collector runs between batches only (`BetweenBatches`): for a process of
    # its own; off where the projector shares its process (`profiles serve`)
    collect_between_batches: bool = False
    # while behind, the next batch is polled and decoded while this one is written
    # (`_handle_reading_ahead`): for a process of its own, with no API to keep waiting
    read_ahead: bool = False
    dedupe_window: timedelta = DEDUPE_WINDOW
    prune_every: float = 300.0  # seconds between prunes of the dedupe rows
    stats: ProjectorStats = field(default_factory=ProjectorStats)
    _pruned_at: float | None = None
    _expected: dict[int, int] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        group = self.group or await store_group(self.pool, self.name)
        consumer = self.log.consumer(group, self._on_assign)
        await consumer.start()
        log.info("projector.started", projection=self.name, topic=self.log.topic, group=group)
        ask = self.batch_size
        ahead = Ahead([], 0)  # the next batch, polled and decoded during the last apply
        backoff = Backoff()
        try:
            with BetweenBatches(self.collect_between_batches) as collector:
                while not stop.is_set():
                    try:
                        asked = ask
                        if ahead.records:
                            batch, ahead = ahead.records, Ahead([], 0)
                            got = len(batch)
                        else:
                            records = await consumer.poll(asked, self.poll_timeout)
                            got = len(records)
                            assigned = consumer.assignment()
                            batch = _decoded([r for r in records if self._unapplied(assigned, r)])
                        ask = self._next_ask(asked, got)
                        if batch:
                            ahead = await self._handle_reading_ahead(
                                consumer, batch, ask if got >= self.batch_size else 0
                            )
                            del batch  # its events are garbage now, not survivors to walk
                            collector.batch_done(held=ahead.objects)
                        await self._prune()
                        backoff.reset()
                    except ROLE_TRANSIENT as exc:
                        ask, ahead = self.batch_size, Ahead([], 0)
                        await self._wait_out(consumer, exc, backoff, stop)
        finally:
            await consumer.stop()
            log.info("projector.stopped", projection=self.name, **vars(self.stats))

    async def _wait_out(
        self, consumer: LogConsumer, exc: Exception, backoff: Backoff, stop: asyncio.Event
    ) -> None:
        """After an outage of PostgreSQL or Kafka: move the consumer back to what is known to
        be applied, pause, and let the loop try again (for ever: an outage ends, and a projector
        that gave up would leave the API serving stale reads without a word).

        The positions are the ones this process applied last, not the stored checkpoints, which
        cannot be read while the database is away. Where another process applied more meanwhile,
        the next apply is fenced and the consumer moves to the stored checkpoints then.
        """
        self.stats.retries += 1
        assigned = consumer.assignment()
        await consumer.seek({p: at for p, at in self._expected.items() if p in assigned})
        seconds = backoff.next_pause()
        # the type only: a driver's message may quote a statement's values
        log.warning(
            "projector.retry",
            projection=self.name,
            error=type(exc).__name__,
            attempt=backoff.attempts,
            pause=seconds,
        )
        await pause(seconds, stop)

    async def _handle_reading_ahead(
        self, consumer: LogConsumer, batch: list[Decoded], ask: int
    ) -> Ahead:
        """Apply `batch`; with read-ahead on and `ask` > 0 (the projector is behind), take the
        next `ask` records the consumer already has and decode them while PostgreSQL writes
        this batch. Returns them decoded, or none when the apply moved the consumer back.

        The apply runs as a task; the next batch is decoded in slices between which the event
        loop lets the apply go on as soon as PostgreSQL answers, so the decoding fills the
        pauses where the process waited for the database. Nothing folded depends on the next
        batch, so order and checkpoints are those of a plain loop.
        """
        if not self.read_ahead or ask <= 0:
            await self._handle(consumer, batch)
            return Ahead([], 0)
        records = await consumer.poll(ask, 0)  # only what is already there: never waits
        applying = asyncio.ensure_future(self._handle(consumer, batch))
        ahead = Ahead([], 0)
        try:
            for start in range(0, len(records), READ_AHEAD_SLICE):
                await asyncio.sleep(0)  # the apply first: its statements go out at once
                # nothing else runs during a slice, so the collector's count grows by
                # exactly the objects the slice keeps
                before = gc.get_count()[0]
                ahead.records += _decoded(records[start : start + READ_AHEAD_SLICE])
                ahead.objects += gc.get_count()[0] - before
        finally:
            kept_position = await applying
        # a consumer moved back (fenced, retrying) redelivers from its checkpoints, these too
        return ahead if kept_position else Ahead([], 0)

    def _next_ask(self, asked: int, got: int) -> int:
        """How many records the next poll asks for: twice as many after a full poll, up to
        `max_batch`; as many again after a short poll that still brought `batch_size` or more;
        `batch_size` again after any smaller poll.

        A full poll means the projector is behind (a rebuild, a restart, a burst): larger
        batches then fold more events of one profile together and pay each batch's fixed costs
        once (a subscription replay ran about a quarter faster at 40,000 than at 5,000). At the
        head of the log polls come back short and batches stay small, so a read waiting on a
        consistency token is not kept waiting behind a large transaction.

        A poll can come back short while far behind: Kafka hands out what its last fetches
        brought (4 MB a partition), often less than 40,000 records. Falling back to
        `batch_size` then made the batches ramp up from 5,000 again and again (200,000 events
        took 17-20 batches at up to 40,000 asked for).

        Off unless asked for (`profiles projector` and `profiles projections rebuild` ask for
        CATCH_UP_BATCH; `profiles serve` does not, its projector shares the API's event loop).
        """
        if got >= asked:
            return min(asked * 2, max(self.max_batch, self.batch_size))
        if got >= self.batch_size:  # still behind; the consumer had no more at hand
            return asked
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
        except ROLE_TRANSIENT as exc:  # the next round tries again; folding goes on meanwhile
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

    def _unapplied(self, assigned: frozenset[int], record: LogRecord) -> bool:
        """Whether a record is of an assigned partition and not applied yet (a rebalance or a
        move back to the checkpoints delivers applied ones again)."""
        return record.partition in assigned and record.offset >= self._expected.get(
            record.partition, 0
        )

    async def _handle(self, consumer: LogConsumer, records: list[Decoded]) -> bool:
        """Apply one batch; False when the consumer was moved back to the stored checkpoints."""
        # filtered again: records read ahead were polled before the batch before them applied
        assigned = consumer.assignment()
        fresh = [d for d in records if self._unapplied(assigned, d.record)]
        if not fresh:
            return True
        batch = _batch(fresh, self._expected, dedupe=not self.log.unique_ids)
        try:
            applied = await self._apply(batch)
        except checkpoints.Fenced as exc:
            self.stats.fenced += 1
            log.warning("projector.fenced", projection=self.name, detail=str(exc))
            await self._reseek(consumer)
            return False
        except ROLE_TRANSIENT:
            raise  # the run loop waits the outage out and rewinds
        except Exception as exc:  # a projection failed on some event: find it, do not stop
            log.error("projector.batch_failed", projection=self.name, error=type(exc).__name__)
            return await self._isolate(consumer, fresh)
        self._done(batch, applied)
        return True

    async def _isolate(self, consumer: LogConsumer, records: list[Decoded]) -> bool:
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
            except checkpoints.Fenced:
                await self._reseek(consumer)
                return False
            except ROLE_TRANSIENT:
                raise  # the run loop waits the outage out and rewinds
            except Exception as exc:
                if len(part) > 1:
                    if not await self._isolate(consumer, part):
                        return False
                    continue
                record = part[0].record
                reason = f"projection failed: {type(exc).__name__}"  # never the values
                dead = _dead(part[0], reason)
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


async def store_group(pool: asyncpg.Pool, prefix: str) -> str:
    """`<prefix>.<store id>`: the consumer group of the projectors writing the store `pool`
    reaches (the read-model schema, in its database).

    Processes writing one store (the members of `--workers`) share the group, so Kafka splits
    the partitions between them; those writing another store from the same topic never join
    it, so each reads every partition (on the PostgreSQL log the group names the lock its one
    active member holds). A new name costs nothing: positions live in the store's checkpoints,
    never in Kafka (the consumer does not commit).
    """
    async with pool.acquire() as conn:
        return f"{prefix}.{await store_id(conn)}"


@dataclass(slots=True)
class Ahead:
    """A batch read ahead, and the tracked objects its events hold (`BetweenBatches`)."""

    records: list[Decoded]
    objects: int


class Decoded(NamedTuple):
    """A record and what it decoded to: its event, or why it is a dead letter (a tuple, as
    `LogRecord`: one per record)."""

    record: LogRecord
    event: Event | None  # None: a dead letter, for `reason`
    reason: str = ""
    subject: UUID | None = None  # of an event refused for its key


def _decoded(records: Sequence[LogRecord]) -> list[Decoded]:
    """Decode records: events, and the reason of each that is a dead letter."""
    out: list[Decoded] = []
    for record in records:
        try:
            event = decode(record.value)
        except DecodeError as exc:
            out.append(Decoded(record, None, exc.reason))
            continue
        if not keyed_by_subject(record.key, event.subject):
            # A record keyed otherwise may sit in another partition than its profile's others,
            # which would break per-profile order: refuse it rather than fold it out of order.
            out.append(Decoded(record, None, "key is not the subject", event.subject))
            continue
        out.append(Decoded(record, event))
    return out


def keyed_by_subject(key: bytes | None, subject: UUID) -> bool:
    """Whether a record's key is its subject's canonical text (lower-case, hyphenated), as the
    log's producers key records, so that a profile's records share one partition.

    Without building that text (`str(subject)` was 0.74 µs a record, this 0.33): 36 bytes
    with hyphens where the canonical text has them, and the 32 others exactly the subject's
    lower-case hex. Then there is no other hyphen, so the key is that text, byte for byte.
    """
    return (
        key is not None
        and len(key) == 36
        and key[8] == key[13] == key[18] == key[23] == _HYPHEN
        and key.replace(b"-", b"") == b"%032x" % subject.int
    )


_HYPHEN = ord("-")


def _batch(records: Sequence[Decoded], expected: dict[int, int], *, dedupe: bool) -> Batch:
    events: list[Event] = []
    dead: list[DeadLetter] = []
    last: dict[int, int] = {}
    for d in records:
        record = d.record
        last[record.partition] = record.offset
        if d.event is None:
            dead.append(_dead(d, d.reason))
        else:
            events.append(d.event)
    moves = {p: (expected.get(p, 0), offset + 1) for p, offset in last.items()}
    return Batch(events=events, dead=dead, moves=moves, dedupe=dedupe)


def _dead(decoded: Decoded, reason: str) -> DeadLetter:
    """A record as a dead letter, naming the profiles its bytes are about: its key's, and the
    subject of an event refused for its key (R26 deletes them with the profile)."""
    record = decoded.record
    named = [p for p in (_profile_in(record.key), decoded.subject) if p is not None]
    return DeadLetter(
        record.partition, record.offset, reason, record.value, tuple(dict.fromkeys(named))
    )


def _profile_in(key: bytes | None) -> UUID | None:
    """The profile id a record's key names, or None for a key that is none."""
    try:
        return UUID(key.decode()) if key else None
    except (UnicodeDecodeError, ValueError):
        return None
