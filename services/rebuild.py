"""Rebuilding the read models into a new schema from the whole log (DESIGN 5).

The folds depend only on events, so replaying the log into an empty schema gives the same read
models. The rebuild runs beside the live projector (its own consumer group and schema) until it
has reached the end the log had when it started; switching is pointing `PROFILES_READ_SCHEMA` at
the new schema and restarting the readers and the projector, which goes on from the new
schema's checkpoints.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.queues import SimpleQueue
from typing import cast

import asyncpg
import structlog

from projections import checkpoints, read_models
from projections.migrate import migrate
from services.logging import configure
from services.projector import CATCH_UP_BATCH, Projector, store_group
from services.runtime import Runtime, create_pool, run_loop, tune_gc, with_runtime
from services.settings import Settings

log = structlog.get_logger(__name__)


class RebuildRefusedError(ValueError):
    """A rebuild that cannot start as asked; the message says why."""


class RebuildFailedError(RuntimeError):
    """A process of a rebuild died; the schema keeps what was applied, with its checkpoints."""


@dataclass(frozen=True)
class Rebuilt:
    """Where the new schema stands."""

    schema: str
    events: int
    seconds: float
    positions: dict[int, int]


async def rebuild(
    rt: Runtime, schema: str, batch_size: int = 5000, max_batch: int = CATCH_UP_BATCH
) -> Rebuilt:
    """Replay the log into `schema` (created and migrated) up to the log's current end."""
    target = await prepare(rt, schema)
    began = time.perf_counter()
    applied = await replay(rt, schema, target, batch_size, max_batch)
    return _done(schema, applied, time.perf_counter() - began, target)


def rebuild_in_processes(
    settings: Settings,
    schema: str,
    workers: int,
    batch_size: int = 5000,
    max_batch: int = CATCH_UP_BATCH,
) -> Rebuilt:
    """`rebuild` by `workers` processes at once, each folding some of the log's partitions.

    They share the consumer group `rebuild.<store id>` (the new schema's: `store_group`), so
    Kafka splits the partitions between them as between `profiles projector --workers`
    members, and each keeps going until every partition has reached the end the log had at
    the start: none leaves the group early, which would move its partitions and stall the
    others. If a process dies, the others get SIGTERM (they leave the group on it) and the
    rebuild fails; the same command again goes on from the schema's checkpoints.

    Kafka only (the PostgreSQL log is one partition), with a PostgreSQL server of its own
    (processes cannot share the embedded one this way).
    """
    if not settings.kafka_bootstrap:
        raise RebuildRefusedError("--workers needs Kafka: the PostgreSQL log has one partition")
    if not settings.database_url:
        raise RebuildRefusedError("--workers needs --database-url: the processes share one server")
    target = run_loop(with_runtime(settings, lambda rt: prepare(rt, schema)))
    began = time.perf_counter()
    # spawned, not forked: this process ran an event loop and holds its library state
    context = multiprocessing.get_context("spawn")
    counts = context.SimpleQueue()
    members = [
        context.Process(
            target=_member, args=(settings, schema, target, batch_size, max_batch, counts)
        )
        for _ in range(workers)
    ]
    for member in members:
        member.start()
    try:
        running = {member.sentinel: member for member in members}
        while running:
            for ended in wait(list(running)):
                member = running.pop(cast(int, ended))  # wait() gives back the sentinels
                member.join()
                if member.exitcode != 0:
                    raise RebuildFailedError(
                        f"a rebuild process ended with exit code {member.exitcode}; run the "
                        f"same command again: it goes on from the checkpoints of schema {schema!r}"
                    )
    finally:  # the others stop at once: their partitions would only move to each other
        _stop(members)
    applied = sum(counts.get() for _ in members)
    return _done(schema, applied, time.perf_counter() - began, target)


async def prepare(rt: Runtime, schema: str) -> dict[int, int]:
    """Create and migrate `schema`; return where the replay ends: each partition's next
    offset now (partitions with no record left out)."""
    if schema == rt.settings.read_schema:
        raise RebuildRefusedError(f"{schema!r} is the live read schema: rebuild into another one")
    pool = await create_pool(rt.database_url, schema)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema)
    finally:
        await pool.close()
    return {p: n for p, n in (await rt.log.ends()).items() if n > 0}


async def replay(
    rt: Runtime,
    schema: str,
    target: dict[int, int],
    batch_size: int = 5000,
    max_batch: int = CATCH_UP_BATCH,
) -> int:
    """Fold the log into `schema` until every partition reached `target`; return how many
    events this process applied (several may replay into one schema: `rebuild_in_processes`)."""
    pool = await create_pool(rt.database_url, schema)
    try:
        projector = Projector(
            pool,
            rt.log,
            read_models.NAME,
            read_models.project,
            batch_size,
            max_batch,
            group=await store_group(pool, "rebuild"),
            collect_between_batches=True,
            read_ahead=True,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(projector.run(stop))
        try:
            while not await _reached(pool, rt.log.topic, target):
                if task.done():
                    task.result()  # a failed replay says why
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await task
        return projector.stats.applied
    finally:
        await pool.close()


def _done(schema: str, applied: int, seconds: float, target: dict[int, int]) -> Rebuilt:
    log.info("rebuild.done", schema=schema, events=applied, seconds=seconds)
    return Rebuilt(schema, applied, seconds, target)


def _member(
    settings: Settings,
    schema: str,
    target: dict[int, int],
    batch_size: int,
    max_batch: int,
    counts: SimpleQueue[int],
) -> None:
    """One process of `rebuild_in_processes` (a fresh interpreter: logging set up again); it
    reports how many events it applied."""
    configure(settings.log_format)
    tune_gc()

    async def replayed(rt: Runtime) -> int:
        replaying = asyncio.ensure_future(replay(rt, schema, target, batch_size, max_batch))
        # stopped by the parent (another member failed): leave the group on the way out, so
        # that running the command again does not wait for this member's session to expire
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, replaying.cancel)
        return await replaying

    counts.put(run_loop(with_runtime(settings, replayed)))


def _stop(members: Sequence[BaseProcess]) -> None:
    """End the members still running: SIGTERM, then SIGKILL after 10 s."""
    for member in members:
        if member.is_alive():
            member.terminate()
    for member in members:
        member.join(10)
        if member.is_alive():
            member.kill()
            member.join()


async def _reached(pool: asyncpg.Pool, topic: str, target: dict[int, int]) -> bool:
    async with pool.acquire() as conn:
        stored = await checkpoints.load(conn, read_models.NAME, topic, list(target))
    return all(stored[p] >= n for p, n in target.items())
