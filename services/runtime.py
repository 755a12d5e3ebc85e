"""Wiring: settings in, a running pool, schema and event log out (cosmicpython's bootstrap)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson

from projections.migrate import migrate
from services import ingest_schema, sessions
from services.eventlog.kafka import KafkaLog
from services.eventlog.port import EventLog
from services.eventlog.postgres import PostgresLog
from services.geo import GeoLocator, open_locator
from services.imports import Importer
from services.settings import Settings

T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop where it is installed: the projector, intake and import roles
    spend much of their time in socket reads and writes (PostgreSQL, Kafka), which uvloop does
    in C; without it, the standard loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.run(main)
    return uvloop.run(main)


def tune_gc() -> None:
    """Fewer and shorter garbage collections for a process that folds batches of events.

    A batch allocates hundreds of thousands of short-lived objects; at the default thresholds
    the collector runs every 700 allocations and its full passes rescan every module, class
    and startup object each time. Freezing what exists at startup takes those out of every
    scan, and a larger first threshold makes collections rarer; nothing here holds cycles
    long enough for the delay to cost memory.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


# tracked objects that batches may leave alive before a process collecting between batches
# runs the collector (`BetweenBatches`)
COLLECT_AFTER = 100_000


class BetweenBatches:
    """The garbage collector run between batches only, for a process of its own that works in
    batches (the projector, a file import); a no-op when `on` is False.

    A batch allocates millions of objects, and refcounting frees nearly all of them when the
    batch is done. Collections during the batch found almost nothing to free, yet each one
    walked the batch's live events and rows: about a quarter of a subscription replay's CPU
    (7,915 and 7,907 events/s with them, 10,269 and 11,129 without). After a batch, the
    tracked objects still alive since the last collection (`gc.get_count()[0]`) are what may
    hold cycles; once they reach COLLECT_AFTER the collector runs, with no batch to walk.
    """

    def __init__(self, on: bool) -> None:
        self._paused = on and gc.isenabled()

    def __enter__(self) -> BetweenBatches:
        if self._paused:
            gc.disable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._paused:
            gc.enable()

    def batch_done(self, held: int = 0) -> None:
        """Between two batches: collect if enough objects survived. `held` is how many of them
        the caller keeps on purpose (a batch read ahead): a collection would walk them all and
        free none of them."""
        if self._paused and gc.get_count()[0] - held >= COLLECT_AFTER:
            gc.collect()


def yield_to_readers(nice: int) -> None:
    """Lower this process's CPU priority to `nice` (never raise it back): the bulk roles
    (projector, intake, file import) give way to the API processes on a shared box, so a
    `GET` answers quickly while an import saturates the cores.

    On Linux a priority belongs to a thread: every thread the process already has is lowered
    (an executor thread made earlier would otherwise go on checking rows at the old priority);
    threads and child processes made later inherit it. Call it after starting an embedded
    PostgreSQL, which must not inherit it (the API processes share that server).
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: the process is the unit
        threads = [0]
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:  # the thread ended meanwhile
            continue


@dataclass
class Runtime:
    """What every process shares: settings, the pool and the event log."""

    settings: Settings
    database_url: str
    pool: asyncpg.Pool
    log: EventLog
    embedded: Path | None = None
    geo: GeoLocator | None = None

    @property
    def importer(self) -> Importer:
        return Importer(self.pool, self.log, self.geo)

    async def close(self) -> None:
        await self.log.stop()
        await _release(self.pool, self.geo, self.embedded)


async def _release(
    pool: asyncpg.Pool | None, geo: GeoLocator | None, embedded: Path | None
) -> None:
    """Close what a runtime opened below its log, and stop the embedded server it started."""
    if pool is not None:
        await pool.close()
    if geo is not None:
        geo.close()
    if embedded is not None:
        from services.local.postgres import stop_postgres

        await asyncio.to_thread(stop_postgres, embedded)


def database_url(settings: Settings) -> tuple[str, Path | None]:
    """The configured database, or the embedded PostgreSQL (started in the data directory)."""
    if settings.database_url:
        return settings.database_url, None
    # only the embedded default needs these
    from services.local.postgres import postgres_running, start_postgres

    folder = settings.data_dir / "postgres"
    running = postgres_running(folder)
    if running is not None:  # `profiles serve` has it up: share it, and leave it running
        return running, None
    return start_postgres(folder), folder


async def open_runtime(settings: Settings, *, background: bool = False) -> Runtime:
    """Connect, migrate, and start the event log the settings choose. A `background` role
    (projector, intake, file import) lowers its priority once the database is up, before its
    sessions open (`yield_to_readers`, `share_priority`)."""
    geo = open_locator(settings.geoip_db)  # a bad file fails the start, not the first import
    url, embedded = await asyncio.to_thread(database_url, settings)
    if background:  # after an embedded server started: it serves the API roles too
        yield_to_readers(settings.background_nice)
    pool: asyncpg.Pool | None = None
    try:
        pool = await create_pool(url, settings.read_schema)
        async with pool.acquire() as conn:
            await migrate(conn, settings.read_schema)
            await ingest_schema.install(conn)
        log: EventLog = (
            KafkaLog(
                settings.kafka_bootstrap,
                topic=settings.events_topic,
                partitions=settings.kafka_partitions,
                pool=pool,
                group_instance=settings.group_instance,
                publish_wait=settings.publish_wait,
            )
            if settings.kafka_bootstrap
            else PostgresLog(pool, topic=settings.events_topic)
        )
        await log.start()
    except BaseException:  # a start that fails leaves no embedded server behind
        await _release(pool, geo, embedded)
        raise
    return Runtime(
        settings=settings, database_url=url, pool=pool, log=log, embedded=embedded, geo=geo
    )


async def with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    """`work` on a runtime opened for it and closed after it, however it ends."""
    rt = await open_runtime(settings)
    try:
        return await work(rt)
    finally:
        await rt.close()


async def jsonb_codec(conn: asyncpg.Connection) -> None:
    """jsonb in and out as Python values through orjson (several times faster than json).

    Binary format (a version byte, then the JSON text) so that projections can COPY rows with
    jsonb columns in asyncpg's binary COPY, which has no text-format path.
    """
    await conn.set_type_codec(
        "jsonb",
        encoder=_jsonb_out,
        decoder=_jsonb_in,
        schema="pg_catalog",
        format="binary",
    )


def _jsonb_out(value: object) -> bytes:
    return b"\x01" + orjson.dumps(value)


def _jsonb_in(data: bytes) -> object:
    return orjson.loads(data[1:])


async def create_pool(url: str, schema: str, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections read and write the read-model schema."""
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=max_size,
        server_settings={"search_path": f"{schema},public"},
        init=_prepare,
        reset=sessions.reset_released,
    )
    assert pool is not None
    return pool


async def _prepare(conn: asyncpg.Connection) -> None:
    await jsonb_codec(conn)
    await share_priority(conn)


async def share_priority(conn: asyncpg.Connection) -> None:
    """Give a local PostgreSQL session the CPU priority this process runs at.

    A bulk role lowered by `yield_to_readers` does half its work in its database sessions; left
    at the default priority they still push the readers' sessions off the cores. Only where the
    server is a process of this machine that the OS lets us change (same user): the pid the
    server reports must be a PostgreSQL backend here that started when the server says the
    session started, so a server elsewhere (a container, another host, a pooler) is left alone.
    """
    nice = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0
    if nice <= 0:
        return
    started = await conn.fetchval(
        "SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    )
    pid = conn.get_server_pid()
    try:
        if started is None or not _is_backend_here(pid, started.timestamp()):
            return
        if os.getpriority(os.PRIO_PROCESS, pid) < nice:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
    except (OSError, ValueError, IndexError):  # not here, or not ours: it runs as it is
        return


def _is_backend_here(pid: int, started: float) -> bool:
    """Whether local process `pid` is a PostgreSQL backend that started at `started` (epoch s)."""
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:  # /proc is in memory: never blocks
        if not cmdline.read(64).startswith(b"postgres: "):
            return False
    with open(f"/proc/{pid}/stat", "rb") as stat:
        ticks = int(stat.read().rsplit(b")", 1)[1].split()[19])  # field 22: start time
    with open("/proc/stat", "rb") as system:
        boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime"))
    return abs(boot + ticks / os.sysconf("SC_CLK_TCK") - started) < 2.0
