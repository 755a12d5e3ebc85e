"""A projector in a process of its own runs the garbage collector between batches, not during
them (performance, DESIGN 5): the batches' leftover cycles are still freed."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Sequence

import asyncpg
import pytest

from contracts import Event
from projections import read_models
from services import runtime
from services.eventlog.postgres import PostgresLog
from services.projector import Projector
from tests.factories import imported
from tests.pg import migrated_pool

EVENTS = 2000
CYCLES_PER_EVENT = 100


class _Cycle:
    """An object that only the cyclic collector can free (it refers to itself)."""

    def __init__(self) -> None:
        self.me = self


async def _run(
    pool: asyncpg.Pool, *, collect_between_batches: bool
) -> tuple[list[bool], list[int], bool]:
    """Project EVENTS imports in batches of 500, each event leaving CYCLES_PER_EVENT cycles;
    return whether the collector was on in each batch, the cycles still alive after each
    one, and whether it is on after the run."""
    log = PostgresLog(pool, topic=f"gc.{uuid.uuid4().hex}")
    await log.start()
    await log.append([imported(uuid.uuid4(), 0) for _ in range(EVENTS)])
    enabled: list[bool] = []
    alive: list[int] = []

    async def leaving_cycles(conn: asyncpg.Connection, batch: Sequence[Event]) -> None:
        alive.append(sum(isinstance(o, _Cycle) for o in gc.get_objects()))
        enabled.append(gc.isenabled())
        for _ in range(len(batch) * CYCLES_PER_EVENT):
            _Cycle()
        await read_models.project(conn, batch)

    stop = asyncio.Event()
    runner = Projector(
        pool,
        log,
        f"gc-{collect_between_batches}",
        leaving_cycles,
        batch_size=500,
        poll_timeout=0.05,
        collect_between_batches=collect_between_batches,
    )
    task = asyncio.create_task(runner.run(stop))
    try:
        while runner.stats.applied < EVENTS:
            assert not task.done(), task.result()
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
        await log.stop()
    return enabled, alive, gc.isenabled()


@pytest.mark.postgres
async def test_the_collector_is_off_in_batches_and_frees_their_cycles_between_them(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 500 events leave 50,000 cycles (and the batch its own leftovers, far fewer): at this
    # threshold the collector runs after the second batch
    monkeypatch.setattr(runtime, "COLLECT_AFTER", 75_000)
    gc.collect()
    async with migrated_pool(database_url) as pool:
        enabled, alive, after = await _run(pool, collect_between_batches=True)
    assert len(enabled) >= 3
    assert not any(enabled)
    # what the first batch left lived through the second (50,000 < 75,000); after the second
    # (100,000 >= 75,000) the collector ran between the batches and freed them all
    assert alive[1] >= 50_000
    assert alive[2] == 0
    assert after  # the collector is back on once the projector stops


@pytest.mark.postgres
async def test_a_projector_sharing_its_process_leaves_the_collector_alone(
    database_url: str,
) -> None:
    async with migrated_pool(database_url) as pool:
        enabled, _, after = await _run(pool, collect_between_batches=False)
    assert all(enabled)
    assert after
