"""Projector throughput against its two floors: a raw Kafka drain and a bare PostgreSQL COPY.

    python -m bench.projector_bench --events 200000 --profiles 20000 --partitions 4

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (see bench/README.md). One run creates a fresh
database and a fresh topic `bench.<uuid>`, publishes the events, measures the three rates, checks
the projected read model and writes bench/out/projector-<timestamp>.json.

In the same run, what this box allows at best: a ceiling with no database (decoding the events,
folding each batch onto the profiles kept in memory and making each event's timeline line), the
write floor (PostgreSQL alone inserting again the rows the projector inserted; `--no-floor`
skips it) and the two-core bound of the two together.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aiokafka
import asyncpg
import pydantic
import structlog
from aiokafka import AIOKafkaConsumer

from bench.common import (
    collector_off,
    decode_rate,
    delete_topics,
    table_writes,
    two_core_bound,
    write_floor,
    writes_between,
)
from bench.cpu import KINDS, measured, timed_copy
from contracts import (
    Event,
    ProfileImported,
    ProfileImportedData,
    ProfileUpdated,
    ProfileUpdatedData,
    decode,
    encode,
)
from domain.history import entry
from domain.identity import md5_id, xxh_id
from domain.profile import ProfileState
from projections import profiles, read_models
from projections.migrate import migrate
from services.event_ids import id_at
from services.eventlog.kafka import FETCH_BYTES_PER_PARTITION, KafkaLog
from services.local.scratch import scratch_database
from services.projector import CATCH_UP_BATCH, Projector
from services.runtime import create_pool, tune_gc

SCHEMA = "read_models"
OUT_DIR = Path(__file__).resolve().parent / "out"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET_RATIO_VS_DRAIN = 0.3
TARGET_EPS = 10_000.0

_FIRST = ["Anna", "Ben", "Chloé", "David", "Emma", "Farid", "Greta", "Hugo", "Inès", "Jonas"]
_LAST = ["Martin", "Bernard", "Dubois", "Müller", "Rossi", "García", "Nowak", "Smith", "Kim"]
_CITIES = [("Paris", "FR"), ("Lyon", "FR"), ("Berlin", "DE"), ("Madrid", "ES"), ("Roma", "IT")]
_TIERS = ["bronze", "silver", "gold", "platinum"]
_SOURCES = ["landing", "checkout", "import", "partner", "popup"]
_TOPICS = ["news", "sport", "travel", "food", "tech", "music", "books"]


# ---------------------------------------------------------------------------------------------
# Workload


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _event_id(rng: random.Random, when: datetime, random_ids: bool) -> UUID:
    """The id the service would have minted at `when` (time-ordered, `services.event_ids`), or
    a random one, as a producer outside the service may choose (`--random-ids`)."""
    if random_ids:
        return _uuid(rng)
    return id_at(int(when.timestamp() * 1000), rng.getrandbits(74))


def _standard_fields(rng: random.Random) -> dict[str, Any]:
    city, country = rng.choice(_CITIES)
    return {
        "first_name": rng.choice(_FIRST),
        "last_name": rng.choice(_LAST),
        "city": city,
        "country": country,
        "zip_code": f"{rng.randrange(10000, 99999)}",
        "birthday": f"{rng.randrange(1950, 2006)}-{rng.randrange(1, 13):02d}"
        f"-{rng.randrange(1, 29):02d}",
        "gender": rng.choice(["f", "m", "x"]),
        "language": rng.choice(["fr", "de", "en", "es", "it"]),
    }


def build_events(
    n_events: int, n_profiles: int, seed: int = 42, *, random_ids: bool = False
) -> list[Event]:
    """One `profile.imported` per profile, first in its history, the rest `profile.updated`.

    Imports are spread over the stream (not all up front) so that every batch mixes inserts
    of new profiles with updates of known ones, as a live stream would. Event ids are
    time-ordered, as the service mints them, unless `random_ids`.
    """
    if n_profiles > n_events:
        raise ValueError("--profiles must not exceed --events")
    rng = random.Random(seed)
    ids = [_uuid(rng) for _ in range(n_profiles)]
    events: list[Event] = []
    imported = 0
    for i in range(n_events):
        remaining = n_events - i
        if imported < n_profiles and (
            imported == 0 or rng.random() < (n_profiles - imported) / remaining
        ):
            pid = ids[imported]
            imported += 1
            std = _standard_fields(rng)
            events.append(
                ProfileImported(
                    id=_event_id(rng, T0 + timedelta(seconds=i), random_ids),
                    source="/bench/import",
                    time=T0 + timedelta(seconds=i),
                    subject=pid,
                    database_id=f"db{imported % 8}",
                    data=ProfileImportedData(
                        import_mode=rng.choice(["api", "file", "manual", "push"]),
                        created=True,
                        email=f"user{imported}@example{imported % 50}.com",
                        phones=(f"+3361{rng.randrange(10**7, 10**8)}",),
                        fields=std,
                        custom={
                            "loyalty_tier": rng.choice(_TIERS),
                            "signup_source": rng.choice(_SOURCES),
                            "score": rng.randrange(0, 1000),
                            "interests": rng.sample(_TOPICS, 3),
                        },
                    ),
                )
            )
        else:
            pid = ids[rng.randrange(imported)]
            std = _standard_fields(rng)
            set_fields = {k: std[k] for k in rng.sample(sorted(std), 2)}
            custom = {"score": rng.randrange(0, 1000)} if rng.random() < 0.5 else {}
            events.append(
                ProfileUpdated(
                    id=_event_id(rng, T0 + timedelta(seconds=i), random_ids),
                    source="/bench/api",
                    time=T0 + timedelta(seconds=i),
                    subject=pid,
                    database_id="db1",
                    data=ProfileUpdatedData(set=set_fields, custom_set=custom),
                )
            )
    return events


def copy_rows(n_rows: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """N rows shaped like the `profiles` read model (distinct ids), built before timing."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_rows):
        pid = _uuid(rng)
        std = _standard_fields(rng)
        custom = {
            "loyalty_tier": rng.choice(_TIERS),
            "signup_source": rng.choice(_SOURCES),
            "score": rng.randrange(0, 1000),
            "interests": rng.sample(_TOPICS, 3),
        }
        at = T0 + timedelta(seconds=i)
        rows.append(
            (
                pid,
                f"db{i % 8}",
                md5_id(pid),
                xxh_id(pid),
                f"user{i}@example{i % 50}.com",
                [f"+3361{rng.randrange(10**7, 10**8)}"],
                json.dumps(std),
                json.dumps(custom),
                "subscribed",
                "api",
                at,
                at,
                1,
            )
        )
    return rows


COPY_COLUMNS = (
    "profile_id",
    "database_id",
    "md5_id",
    "xxh_id",
    "email",
    "phones",
    "fields",
    "custom",
    "status",
    "import_mode",
    "created_at",
    "updated_at",
    "version",
)


# ---------------------------------------------------------------------------------------------
# Servers


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Result:
    events: int
    profiles: int
    partitions: int
    batch_size: int
    workers: int = 1
    event_ids: str = "time-ordered"  # or "random" (`--random-ids`)
    publish_s: float = 0.0
    publish_eps: float = 0.0
    raw_drain_s: float = 0.0
    raw_drain_eps: float = 0.0
    raw_drain_steady_eps: float = 0.0
    copy_s: float = 0.0
    copy_rows_per_s: float = 0.0
    projector_s: float = 0.0
    projector_eps: float = 0.0
    projector_steady_eps: float = 0.0
    projector_batches: int = 0
    ratio_vs_drain: float = 0.0
    ratio_vs_copy: float = 0.0
    decode_only_eps: float = 0.0  # decoding alone on one core: the ceiling of any projector
    decode_only_ratio_vs_drain: float = 0.0
    # decode + profiles fold + timeline lines, no database, one core (`decode_and_fold_rate`)
    decode_fold_eps: float = 0.0
    decode_fold_ratio_vs_drain: float = 0.0
    # rows the projector phase inserted/updated/deleted, per table (pg_stat_user_tables)
    projector_writes: dict[str, dict[str, int]] = field(default_factory=dict)
    # PostgreSQL alone inserting the read-model rows again (`common.write_floor`); {} with
    # --no-floor, as is two_core_bound (`common.two_core_bound` plus its ratio_vs_drain)
    write_floor: dict[str, Any] = field(default_factory=dict)
    two_core_bound: dict[str, Any] = field(default_factory=dict)
    # CPU microseconds an event, by process kind (`bench.cpu`), in the drain and the projector
    drain_cpu_us: dict[str, float] = field(default_factory=dict)
    copy_cpu_us: dict[str, float] = field(default_factory=dict)  # a row
    projector_cpu_us: dict[str, float] = field(default_factory=dict)
    meets_target: bool = False
    verified: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    cpu_count: int = 0
    timestamp: str = ""


async def publish(log: KafkaLog, events: Sequence[Event], chunk: int) -> float:
    began = time.perf_counter()
    for start in range(0, len(events), chunk):
        await log.append(events[start : start + chunk])
    return time.perf_counter() - began


async def raw_drain(bootstrap: str, topic: str, expected: int) -> tuple[float, float]:
    """Read every message with a bare consumer; (seconds from start(), seconds from 1st record)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-drain-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=FETCH_BYTES_PER_PARTITION,  # as KafkaLogConsumer
    )
    began = time.perf_counter()
    await consumer.start()
    first: float | None = None
    seen = 0
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for messages in batches.values():
                if messages and first is None:
                    first = time.perf_counter()
                seen += len(messages)
        ended = time.perf_counter()
    finally:
        await consumer.stop()
    return ended - began, ended - (first or began)


async def bare_copy(url: str, rows: list[tuple[Any, ...]]) -> tuple[float, dict[str, float]]:
    """COPY the rows into a table shaped like `profiles` (same columns, keys and indexes);
    (seconds, CPU a row by process kind).

    A plain connection, not the pool: the pool's text jsonb codec has no binary COPY format.
    """
    conn = await asyncpg.connect(url, server_settings={"search_path": f"{SCHEMA},public"})
    try:
        await conn.execute("CREATE TABLE copy_bench (LIKE profiles INCLUDING ALL)")
        timed = await timed_copy(conn, "copy_bench", rows, COPY_COLUMNS)
        await conn.execute("DROP TABLE copy_bench")
    finally:
        await conn.close()
    return timed


class _FirstRecordLog:
    """The projector's KafkaLog, noting when its consumer first returns records."""

    def __init__(self, log: KafkaLog) -> None:
        self._log = log
        self.topic = log.topic
        self.first: float | None = None

    def consumer(self, group: str, on_assign: Any) -> Any:
        inner = self._log.consumer(group, on_assign)
        outer = self

        class _Consumer:
            async def start(self) -> None:
                await inner.start()

            async def stop(self) -> None:
                await inner.stop()

            async def poll(self, max_records: int, max_wait: float) -> Any:
                records = await inner.poll(max_records, max_wait)
                if records and outer.first is None:
                    outer.first = time.perf_counter()
                return records

            async def seek(self, positions: dict[int, int]) -> None:
                await inner.seek(positions)

            def assignment(self) -> frozenset[int]:
                return inner.assignment()

        return _Consumer()

    async def start(self) -> None:
        await self._log.start()

    async def stop(self) -> None:
        await self._log.stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


async def run_projector(
    pool: asyncpg.Pool,
    log: KafkaLog,
    expected: int,
    batch_size: int,
    max_batch: int,
    limit_s: float,
) -> tuple[float, float, int]:
    """Run the profiles projector until `expected` events are applied and checkpointed."""
    watched = _FirstRecordLog(log)
    tune_gc()  # as the `profiles projector` process does
    projector = Projector(
        pool,
        watched,
        read_models.NAME,
        read_models.project,
        batch_size=batch_size,
        max_batch=max_batch,  # the rest as the `profiles projector` process does
        collect_between_batches=True,
        read_ahead=True,
    )
    stop = asyncio.Event()
    began = time.perf_counter()
    task = asyncio.create_task(projector.run(stop))
    try:
        while projector.stats.applied < expected:
            if task.done():
                task.result()
                raise RuntimeError("projector stopped before applying every event")
            if time.perf_counter() - began > limit_s:
                raise TimeoutError(f"projector applied {projector.stats.applied} of {expected}")
            await asyncio.sleep(0.005)
        ended = time.perf_counter()
    finally:
        stop.set()
        await task
    return ended - began, ended - (watched.first or began), projector.stats.batches


def workers_process(
    url: str,
    bootstrap: str,
    topic: str,
    partitions: int,
    workers: int,
    batch_size: int,
    max_batch: int,
) -> tuple[list[str], dict[str, str]]:
    """The command and environment of `profiles projector --workers N` on this topic."""
    env = dict(
        os.environ,
        DATABASE_URL=url,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        PROFILES_EVENTS_TOPIC=topic,
        PROFILES_READ_SCHEMA=SCHEMA,
        PROFILES_KAFKA_PARTITIONS=str(partitions),
        PROFILES_LOG_FORMAT="json",
    )
    command = [sys.executable, "-m", "services", "projector", "--workers", str(workers)]
    command += ["--batch-size", str(batch_size), "--max-batch", str(max_batch)]
    return command, env


async def run_workers(
    pool: asyncpg.Pool,
    url: str,
    bootstrap: str,
    topic: str,
    args: argparse.Namespace,
    expected: int,
) -> tuple[float, float, int]:
    """`profiles projector --workers N` as its own process tree, until the checkpoints cover all.

    The checkpoint moves in the same transaction as the batch, so covered means applied.
    """
    command, env = workers_process(
        url, bootstrap, topic, args.partitions, args.workers, args.batch_size, args.max_batch
    )
    began = time.perf_counter()
    child = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    first: float | None = None
    try:
        while True:
            async with pool.acquire() as conn:
                done = await conn.fetchval(
                    "SELECT coalesce(sum(next_offset), 0) FROM checkpoints "
                    "WHERE projection = $1 AND topic = $2",
                    read_models.NAME,
                    topic,
                )
            if done and first is None:
                first = time.perf_counter()
            if done >= expected:
                ended = time.perf_counter()
                break
            if child.returncode is not None:
                raise RuntimeError(f"projector workers exited with {child.returncode}")
            if time.perf_counter() - began > args.timeout:
                raise TimeoutError(f"projector workers applied {done} of {expected}")
            await asyncio.sleep(0.02)
    finally:
        child.terminate()
        await child.wait()
    return ended - began, ended - (first or began), 0


def decode_and_fold_rate(payloads: list[bytes], batch_size: int) -> float:
    """Events/s of what the projector does to these events without its database: decode each
    batch, fold it onto the profiles it names (`profiles.apply`, as `profiles.project` does
    between its load and its write) and make each event's timeline line (`history.entry`, as
    `history.project` does: one an event). Profiles are kept in memory from the batches before
    (nothing read, nothing written) and only the decoding, the fold and the lines are timed, not
    that bookkeeping. A projector that stores its rows cannot be faster on one core.

    The cyclic garbage collector is off meanwhile, as in subscription_bench: its passes over
    the bookkeeping (every profile so far, in memory) are a cost the projector does not have
    (its profiles live in PostgreSQL)."""
    with collector_off():
        return _decode_and_fold_rate(payloads, batch_size)


def _decode_and_fold_rate(payloads: list[bytes], batch_size: int) -> float:
    spent = 0.0
    stored: dict[UUID, ProfileState] = {}
    for start in range(0, len(payloads), batch_size):
        began = time.perf_counter()
        events = [decode(payload) for payload in payloads[start : start + batch_size]]
        changes = profiles.apply(profiles.Loaded(profiles=stored), events)
        lines = [line for line in map(entry, events) if line is not None]
        spent += time.perf_counter() - began
        stored.update(changes.upserts)
        for gone in changes.deletions:
            stored.pop(gone, None)
        del lines  # the projector writes them; freeing them is not folding
    return len(payloads) / spent


async def projector_writes(
    pool: asyncpg.Pool, before: dict[str, dict[str, int]], expected: int, limit_s: float = 15.0
) -> dict[str, dict[str, int]]:
    """The tables the projector phase wrote, once PostgreSQL's counters show all of it.

    A busy backend publishes its counters at most once a second and the last of them up to
    10 s after it goes idle (or when it exits, for `--workers`), so wait until they show one
    `applied_events` row per event: read too soon, the last batches would be missing.
    """
    began = time.perf_counter()
    while True:
        written = writes_between(before, await table_writes(pool))
        seen = written.get(f"{SCHEMA}.applied_events", {}).get("inserted", 0)
        if seen >= expected:
            return written
        if time.perf_counter() - began > limit_s:
            _say(f"table counters show {seen:,} of {expected:,} applied events: reporting those")
            return written
        await asyncio.sleep(0.25)


async def floor_and_bound(url: str, result: Result) -> None:
    """The write floor of the read-model tables the projector inserted into (not the bench's
    own or other schemas' tables), and the two-core bound it makes with the Python ceiling."""
    inserted = [
        t
        for t, w in result.projector_writes.items()
        if t.startswith(f"{SCHEMA}.") and w.get("inserted")
    ]
    result.write_floor = await write_floor(url, inserted)
    # reading the log costs any consumer at least what it cost the bare drain (its CPU a
    # record); encoding is left out: the bare COPY's rows are wider than most of these
    bound = two_core_bound(
        result.write_floor,
        result.events,
        result.decode_fold_eps,
        read_us=result.drain_cpu_us.get("total", 0.0),
    )
    bound["ratio_vs_drain"] = round(bound["events_per_s"] / result.raw_drain_eps, 3)
    result.two_core_bound = bound


async def verify(pool: asyncpg.Pool, topic: str, n_events: int, n_profiles: int) -> dict[str, Any]:
    async with pool.acquire() as conn:
        got = {
            "applied_events": await conn.fetchval("SELECT count(*) FROM applied_events"),
            "profiles": await conn.fetchval("SELECT count(*) FROM profiles"),
            "sum_version": await conn.fetchval("SELECT coalesce(sum(version), 0) FROM profiles"),
            "checkpointed": await conn.fetchval(
                "SELECT coalesce(sum(next_offset), 0) FROM checkpoints WHERE topic = $1", topic
            ),
            "dead_letters": await conn.fetchval("SELECT count(*) FROM dead_letters"),
        }
    want = {
        "applied_events": n_events,
        "profiles": n_profiles,
        "sum_version": n_events,
        "checkpointed": n_events,
        "dead_letters": 0,
    }
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    if wrong:
        raise AssertionError(f"read model is wrong (got, want): {wrong}")
    return {k: int(v) for k, v in got.items()}


async def versions(pool: asyncpg.Pool) -> dict[str, str]:
    async with pool.acquire() as conn:
        pg = await conn.fetchval("SHOW server_version")
    return {
        "python": platform.python_version(),
        "postgresql": str(pg),
        # Brokers do not report their release over the protocol: say it with KAFKA_VERSION.
        "kafka": os.environ.get("KAFKA_VERSION", "unknown (set KAFKA_VERSION)"),
        "aiokafka": aiokafka.__version__,
        "asyncpg": asyncpg.__version__,
        "pydantic": pydantic.VERSION,
        "platform": platform.platform(),
    }


async def bench(args: argparse.Namespace, database_url: str, bootstrap: str) -> Result:
    result = Result(
        events=args.events,
        profiles=args.profiles,
        partitions=args.partitions,
        batch_size=args.batch_size,
        workers=args.workers,
        event_ids="random" if args.random_ids else "time-ordered",
        cpu_count=os.cpu_count() or 0,
        timestamp=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
    )
    began = time.perf_counter()
    events = build_events(args.events, args.profiles, args.seed, random_ids=args.random_ids)
    rows = copy_rows(args.events)
    _say(f"built {len(events)} events and {len(rows)} COPY rows in {_s(began)}")

    topic = f"bench.{uuid.uuid4()}"
    async with scratch_database(database_url, prefix="bench") as url:
        pool = await create_pool(url, SCHEMA)
        log = KafkaLog(bootstrap, topic=topic, partitions=args.partitions)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, SCHEMA)
            result.versions = await versions(pool)
            await log.start()

            result.publish_s = await publish(log, events, args.chunk)
            result.publish_eps = args.events / result.publish_s
            _say(f"published to {topic} at {result.publish_eps:,.0f} events/s")
            payloads = [encode(e) for e in events]
            del events

            with measured() as drain_cpu:
                total, steady = await raw_drain(bootstrap, topic, args.events)
            result.drain_cpu_us = drain_cpu.per_event_us(args.events)
            result.raw_drain_s = total
            result.raw_drain_eps = args.events / total
            result.raw_drain_steady_eps = args.events / steady
            _say(f"raw drain at {result.raw_drain_eps:,.0f} events/s")

            result.copy_s, result.copy_cpu_us = await bare_copy(url, rows)
            result.copy_rows_per_s = args.events / result.copy_s
            _say(f"bare COPY at {result.copy_rows_per_s:,.0f} rows/s")
            del rows

            before = await table_writes(pool)
            with measured() as projector_cpu:
                if args.workers > 1:
                    total, steady, batches = await run_workers(
                        pool, url, bootstrap, topic, args, args.events
                    )
                else:
                    with _profiled(args):
                        total, steady, batches = await run_projector(
                            pool, log, args.events, args.batch_size, args.max_batch, args.timeout
                        )
            result.projector_cpu_us = projector_cpu.per_event_us(args.events)
            result.projector_s = total
            result.projector_eps = args.events / total
            result.projector_steady_eps = args.events / steady
            result.projector_batches = batches
            _say(f"projector at {result.projector_eps:,.0f} events/s")

            result.decode_only_eps = decode_rate(payloads)
            _say(f"decoding alone at {result.decode_only_eps:,.0f} events/s")
            # batches as large as the projector's once it is catching up
            catch_up = max(args.batch_size, args.max_batch)
            result.decode_fold_eps = decode_and_fold_rate(payloads, catch_up)
            del payloads
            _say(f"decode and fold (no database) at {result.decode_fold_eps:,.0f} events/s")
            # read after the ceilings (no database), while PostgreSQL publishes the last counters
            result.projector_writes = await projector_writes(pool, before, args.events)

            result.verified = await verify(pool, topic, args.events, args.profiles)
            if args.floor:
                _say("write floor: the projector's rows inserted again by PostgreSQL alone")
                await floor_and_bound(url, result)
        finally:
            await log.stop()
            await pool.close()
            try:
                await delete_topics(bootstrap, topic)
            except Exception as exc:  # a left-over bench topic is harmless
                _say(f"could not delete topic {topic}: {exc!r}")

    result.ratio_vs_drain = result.projector_eps / result.raw_drain_eps
    result.ratio_vs_copy = result.projector_eps / result.copy_rows_per_s
    result.decode_only_ratio_vs_drain = result.decode_only_eps / result.raw_drain_eps
    result.decode_fold_ratio_vs_drain = result.decode_fold_eps / result.raw_drain_eps
    result.meets_target = (
        result.ratio_vs_drain >= TARGET_RATIO_VS_DRAIN and result.projector_eps >= TARGET_EPS
    )
    return result


# ---------------------------------------------------------------------------------------------
# Report


@contextmanager
def _profiled(args: argparse.Namespace) -> Iterator[None]:
    """Profile the projector phase with cProfile and/or pyinstrument when asked."""
    profiler = cProfile.Profile() if args.cprofile else None
    sampler: Any = None
    if args.pyinstrument:
        from pyinstrument import (  # type: ignore[import-not-found,unused-ignore]
            Profiler,  # optional: pip install pyinstrument
        )

        sampler = Profiler(interval=0.001, async_mode="disabled")
    if profiler is not None:
        profiler.enable()
    if sampler is not None:
        sampler.start()
    try:
        yield
    finally:
        if sampler is not None:
            sampler.stop()
            Path(args.pyinstrument).write_text(sampler.output_text(unicode=True, show_all=False))
            _say(f"pyinstrument profile of the projector phase written to {args.pyinstrument}")
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
            _say(f"cProfile of the projector phase written to {args.cprofile}")


def table(r: Result) -> str:
    lines = [
        f"events={r.events:,} profiles={r.profiles:,} partitions={r.partitions} "
        f"batch_size={r.batch_size} workers={r.workers} event_ids={r.event_ids} "
        f"cpus={r.cpu_count}",
        f"{'measure':<28}{'seconds':>10}{'per second':>14}",
        f"{'publish (KafkaLog.append)':<28}{r.publish_s:>10.2f}{r.publish_eps:>14,.0f}",
        f"{'raw drain (AIOKafkaConsumer)':<28}{r.raw_drain_s:>10.2f}{r.raw_drain_eps:>14,.0f}",
        f"{'bare COPY (rows)':<28}{r.copy_s:>10.2f}{r.copy_rows_per_s:>14,.0f}",
        f"{'projector':<28}{r.projector_s:>10.2f}{r.projector_eps:>14,.0f}",
        f"{'decode and fold (no DB)':<28}{r.events / r.decode_fold_eps:>10.2f}"
        f"{r.decode_fold_eps:>14,.0f}",
        f"steady state (from first record): drain {r.raw_drain_steady_eps:,.0f}/s, "
        f"projector {r.projector_steady_eps:,.0f}/s ({r.projector_batches} batches); "
        f"first record after {r.raw_drain_s - r.events / r.raw_drain_steady_eps:.2f}s / "
        f"{r.projector_s - r.events / r.projector_steady_eps:.2f}s",
        f"projector / raw drain = {r.ratio_vs_drain:.3f}  (target >= {TARGET_RATIO_VS_DRAIN})",
        f"projector / bare COPY = {r.ratio_vs_copy:.3f}",
        f"decode and fold / raw drain = {r.decode_fold_ratio_vs_drain:.3f}",
        *_cpu_lines(r),
        *_writes_lines(r),
        *_floor_lines(r),
        f"target (>= {TARGET_RATIO_VS_DRAIN} x drain and >= {TARGET_EPS:,.0f}/s): "
        + ("MET" if r.meets_target else "NOT MET"),
        f"verified: {r.verified}",
    ]
    return "\n".join(lines)


def _cpu_lines(r: Result) -> list[str]:
    """CPU an event by process kind in the drain and the projector, and what the target allows.

    The target is a CPU budget: at 0.3 x the drain's rate, the box's cores give each event
    cores / (0.3 x drain rate) of CPU, for everything the projector makes every process do.
    """
    if not (r.projector_cpu_us and r.drain_cpu_us and r.copy_cpu_us):
        return ["CPU by process: not measured (no /proc)"]
    kinds = (*KINDS, "total")
    lines = [
        "CPU an event (us) by process:  "
        + "".join(f"{k:>11}" for k in kinds)
        + f"{'cores busy':>12}"
    ]
    measured_cpu = (
        ("raw drain", r.drain_cpu_us),
        ("bare COPY (a row)", r.copy_cpu_us),
        ("projector", r.projector_cpu_us),
    )
    for name, cpu in measured_cpu:
        lines.append(
            f"  {name:<28}"
            + "".join(f"{cpu[k]:>11.1f}" for k in kinds)
            + f"{cpu['cores_busy']:>12.2f}"
        )
    budget = r.cpu_count * 1e6 / (TARGET_RATIO_VS_DRAIN * r.raw_drain_eps)
    lines.append(
        f"at {TARGET_RATIO_VS_DRAIN} x the drain, {r.cpu_count} cores allow {budget:.1f} us "
        f"of CPU an event; the projector spent {r.projector_cpu_us['total']:.1f}"
    )
    return lines


def _writes_lines(r: Result) -> list[str]:
    """Rows the projector phase wrote, per table, as PostgreSQL counted them."""
    lines = ["projector wrote (rows):"]
    for name, w in r.projector_writes.items():
        moved = "  ".join(f"{k} {v:,}" for k, v in w.items())
        lines.append(f"  {name:<36}{moved}")
    return lines


def _floor_lines(r: Result) -> list[str]:
    """The write floor per table and in total, and the two-core bound against the drain."""
    if not r.write_floor:
        return ["write floor: not measured (--no-floor)"]
    lines = ["write floor (PostgreSQL alone inserting the rows again, one backend):"]
    for name, t in r.write_floor["tables"].items():
        lines.append(
            f"  {name:<36}{t['rows']:>10,} rows{t['s']:>8.2f} s{t['us_per_row']:>8.1f} us/row"
        )
    b = r.two_core_bound
    lines += [
        f"  {'total':<36}{r.write_floor['s']:>23.2f} s = {b['postgres_us_per_event']:.1f} us/event",
        f"two-core bound = 2e6 / ({b['postgres_us_per_event']:.1f} us PostgreSQL + "
        f"{b['python_us_per_event']:.1f} us decode and fold + "
        f"{b['read_us_per_event']:.1f} us reading the log) = {b['events_per_s']:,} events/s "
        f"= {b['ratio_vs_drain']:.3f} x raw drain",
    ]
    return lines


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _s(began: float) -> str:
    return f"{time.perf_counter() - began:.1f}s"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.projector_bench", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=5000, help="projector batch size")
    parser.add_argument(
        "--max-batch",
        type=int,
        default=CATCH_UP_BATCH,
        help="largest batch while catching up (as `profiles projector --max-batch`)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="projector processes (`profiles projector --workers N`); 1 runs it in-process",
    )
    parser.add_argument("--chunk", type=int, default=5000, help="events per KafkaLog.append")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--random-ids",
        action="store_true",
        help="random event ids (version 4), as a producer outside the service may send, "
        "instead of the time-ordered ids the service mints",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="projector phase limit (s)")
    parser.add_argument("--cprofile", help="write a cProfile of the projector phase here")
    parser.add_argument(
        "--pyinstrument", help="write a pyinstrument text profile of the projector phase here"
    )
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the projector, time PostgreSQL alone inserting its rows again (the write "
        "floor) and give the two-core bound",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the JSON result")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    database_url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    missing = [
        name
        for name, value in (("DATABASE_URL", database_url), ("KAFKA_BOOTSTRAP_SERVERS", bootstrap))
        if not value
    ]
    if missing or database_url is None or bootstrap is None:
        print(
            f"projector_bench: {' and '.join(missing)} not set. "
            "Start the servers and export them:\n"
            "    python scripts/services up\n"
            '    eval "$(python scripts/services env)"',
            file=sys.stderr,
        )
        return 2
    # The projector logs every batch at info; keep the benchmark's output to its own lines.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = asyncio.run(bench(args, database_url, bootstrap))
    print(table(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"projector-{result.timestamp}.json"
    path.write_text(json.dumps(asdict(result), indent=2) + "\n")
    _say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
