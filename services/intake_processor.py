"""The intake processor: public events from Kafka in, canonical events out, the rest to the DLQ.

At least once: a batch's offsets are committed only after its appends and its dead letters are
acknowledged. A redelivered event is harmless: its canonical event keeps the publisher's id, which
the log and the projections dedupe (R18, DESIGN 3 and 9). A message that does not parse, or that
the intake rejects, goes to the dead-letter topic with its original bytes and a reason that names
fields and rules, never values (they may be personal data).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from pydantic import ValidationError

from contracts.intake import PublicEvent
from contracts.topics import INTAKE_DLQ_TOPIC, INTAKE_TOPIC
from domain.errors import Violation
from services.eventlog.kafka import ensure_topic, static_name, stop_leaving
from services.eventlog.port import EventLog
from services.geo import GeoLocator
from services.intake import Intake, Outcome
from services.outages import ROLE_TRANSIENT

log = structlog.get_logger(__name__)

_MAX_PARTS = 10  # problems named in one reason

# aiokafka's records and partitions are untyped; these names say which is which.
Record = Any
Batch = dict[Any, list[Record]]


@dataclass
class IntakeStats:
    """Counters a test or an operator can read while the processor works."""

    batches: int = 0
    accepted: int = 0
    dead: int = 0
    retries: int = 0


@dataclass
class IntakeProcessor:
    """Consumes the intake topic in batches until `stop` is set (one member of `group`)."""

    pool: asyncpg.Pool
    log: EventLog
    geo: GeoLocator | None
    bootstrap: str
    topic: str = INTAKE_TOPIC
    dlq_topic: str = INTAKE_DLQ_TOPIC
    group: str = "profiles-intake"
    batch_size: int = 1000
    partitions: int = 4
    poll_timeout: float = 0.5
    retry_pause: float = 1.0
    group_instance: str | None = None  # static name in the group (`--workers` members)
    stats: IntakeStats = field(default_factory=IntakeStats)

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until `stop` is set; a failing batch is retried, never skipped."""
        for topic in (self.topic, self.dlq_topic):
            await ensure_topic(self.bootstrap, topic, self.partitions)
        async with self._producer() as producer, self._consuming() as consumer:
            log.info("intake.started", topic=self.topic, group=self.group)
            while not stop.is_set():
                await self._step(consumer, producer, stop)
        log.info("intake.stopped", topic=self.topic, **vars(self.stats))

    @contextlib.asynccontextmanager
    async def _consuming(self) -> AsyncIterator[Any]:
        consumer = self._consumer()
        await consumer.start()
        try:
            yield consumer
        finally:
            await stop_leaving(consumer)  # a static member too: the others take over at once

    def _consumer(self) -> Any:
        return AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            group_instance_id=static_name(self.group_instance, self.topic),
        )

    def _producer(self) -> Any:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=5
        )

    async def _step(self, consumer: Any, producer: Any, stop: asyncio.Event) -> None:
        batch: Batch = {}
        try:
            batch = await consumer.getmany(
                timeout_ms=int(self.poll_timeout * 1000), max_records=self.batch_size
            )
            if batch:
                await self._handle(consumer, producer, batch)
        except ROLE_TRANSIENT as exc:
            # the type only: a message or a traceback's locals may carry personal data
            self.stats.retries += 1
            log.warning("intake.retry", error=type(exc).__name__, pause=self.retry_pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.retry_pause)
            _rewind(consumer, batch)

    async def _handle(self, consumer: Any, producer: Any, batch: Batch) -> None:
        records = [r for rs in batch.values() for r in rs]
        dead: list[tuple[Record, str]] = []
        parsed: list[tuple[Record, PublicEvent]] = []
        for record in records:
            try:
                event = PublicEvent.model_validate_json(record.value or b"")
            except ValidationError as exc:
                dead.append((record, _invalid(exc)))
                continue
            if _strict_json(record.value):
                parsed.append((record, event))
            else:
                dead.append((record, _NOT_STRICT_JSON))
        outcomes = await self._accept([event for _, event in parsed])
        for (record, _), outcome in zip(parsed, outcomes, strict=True):
            if outcome.outcome == "rejected":
                dead.append((record, _rejected(outcome.violations)))
        await self._bury(producer, dead)
        await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
        self.stats.batches += 1
        self.stats.accepted += len(records) - len(dead)
        self.stats.dead += len(dead)
        log.info("intake.batch", records=len(records), dead=len(dead))

    async def _accept(self, events: Sequence[PublicEvent]) -> list[Outcome]:
        """The intake's outcomes; an event it fails on unexpectedly is rejected alone."""
        if not events:
            return []
        try:
            outcomes, _ = await Intake(self.pool, self.log, self.geo).accept(events)
        except ROLE_TRANSIENT:
            raise
        except Exception as exc:
            if len(events) == 1:
                log.error("intake.event_failed", error=type(exc).__name__)
                failed = Violation("event", f"intake_failed:{type(exc).__name__}", None)
                return [Outcome(0, "rejected", violations=(failed,))]
            # find the one that fails: the others must not wait behind it forever
            log.warning("intake.isolating", error=type(exc).__name__, events=len(events))
            return [(await self._accept([event]))[0] for event in events]
        return outcomes

    async def _bury(self, producer: Any, dead: Sequence[tuple[Record, str]]) -> None:
        """Send each dead letter with its original key and bytes; wait until all are acked."""
        sent = []
        for record, reason in dead:
            try:
                sent.append(
                    await producer.send(
                        self.dlq_topic,
                        record.value,
                        key=record.key,
                        headers=_headers(record, reason),
                    )
                )
            except MessageSizeTooLargeError:
                # its bytes and the dead-letter headers do not fit one record: the letter goes
                # without them, saying so; the headers name where the original still is
                reason += " (payload left out: too large for the dead-letter topic)"
                sent.append(
                    await producer.send(
                        self.dlq_topic, b"", key=record.key, headers=_headers(record, reason)
                    )
                )
        await asyncio.gather(*sent)
        for record, reason in dead:
            log.warning(
                "intake.dead_letter",
                partition=record.partition,
                offset=record.offset,
                reason=reason,
            )


_NOT_STRICT_JSON = "invalid event: message: json_invalid (NaN or Infinity, which JSON has not)"


def _strict_json(value: bytes | None) -> bool:
    """Whether bytes pydantic parsed are JSON as RFC 8259 has it: its parser also takes NaN and
    Infinity, which would then be written out as they came, and no strict reader of the
    canonical topic could parse that event (the HTTP API refuses them: it parses with orjson,
    as here)."""
    if value is None or (b"NaN" not in value and b"Infinity" not in value):
        return True  # a C search, not a second parse of every record (1.8 µs)
    try:  # the words may sit inside strings
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return True


def _rewind(consumer: Any, batch: Batch) -> None:
    """Seek back to the batch's first offsets (the committed ones), where still assigned."""
    assigned = consumer.assignment()
    for tp, records in batch.items():
        if tp in assigned:
            consumer.seek(tp, records[0].offset)


def _headers(record: Record, reason: str) -> list[tuple[str, bytes]]:
    kept = [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")]
    return [
        *kept,
        ("dlq_reason", reason.encode()),
        ("dlq_source_topic", record.topic.encode()),
        ("dlq_source_partition", str(record.partition).encode()),
        ("dlq_source_offset", str(record.offset).encode()),
    ]


def _invalid(exc: ValidationError) -> str:
    # Only locations and error types, as contracts.codec: the input may be personal data.
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['type']}"
        for e in exc.errors(include_url=False)
    ]
    return "invalid event: " + "; ".join(parts[:_MAX_PARTS])


def _rejected(violations: Sequence[Violation]) -> str:
    # field and rule; a violation's value may be personal data
    return "rejected: " + "; ".join(f"{v.field}: {v.rule}" for v in violations[:_MAX_PARTS])
