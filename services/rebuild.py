"""Rebuilding the read models into a new schema from the whole log (DESIGN 5).

The folds depend only on events, so replaying the log into an empty schema gives the same read
models. The rebuild runs beside the live projector (its own consumer group and schema) until it
has reached the end the log had when it started; switching is pointing `PROFILES_READ_SCHEMA` at
the new schema and restarting the readers and the projector, which goes on from the new
schema's checkpoints.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
import structlog

from projections import checkpoints, read_models
from projections.migrate import migrate
from services.projector import CATCH_UP_BATCH, Projector
from services.runtime import Runtime, create_pool

log = structlog.get_logger(__name__)


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
    if schema == rt.settings.read_schema:
        raise ValueError(f"{schema!r} is the live read schema: rebuild into another one")
    pool = await create_pool(rt.database_url, schema)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema)
        target = {p: n for p, n in (await rt.log.ends()).items() if n > 0}
        projector = Projector(
            pool,
            rt.log,
            read_models.NAME,
            read_models.project,
            batch_size,
            max_batch,
            group=f"rebuild.{schema}",
            collect_between_batches=True,
            read_ahead=True,
        )
        stop = asyncio.Event()
        began = time.perf_counter()
        task = asyncio.create_task(projector.run(stop))
        try:
            while not await _reached(pool, rt.log.topic, target):
                if task.done():
                    task.result()  # a failed replay says why
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await task
        seconds = time.perf_counter() - began
        log.info("rebuild.done", schema=schema, events=projector.stats.applied, seconds=seconds)
        return Rebuilt(schema, projector.stats.applied, seconds, target)
    finally:
        await pool.close()


async def _reached(pool: asyncpg.Pool, topic: str, target: dict[int, int]) -> bool:
    async with pool.acquire() as conn:
        stored = await checkpoints.load(conn, read_models.NAME, topic, list(target))
    return all(stored[p] >= n for p, n in target.items())
