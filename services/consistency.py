"""Consistency tokens: the log positions of a write, and waiting for a projection to reach them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Sequence

import asyncpg

from projections import checkpoints
from services.eventlog.port import OUTBOX, Position


def token(positions: Sequence[Position]) -> str:
    """An opaque token for the highest position written in each partition."""
    highest: dict[str, int] = {}
    for p in positions:
        highest[str(p.partition)] = max(highest.get(str(p.partition), -1), p.offset)
    return base64.urlsafe_b64encode(json.dumps(highest).encode()).decode().rstrip("=")


def parse(value: str) -> dict[int, int]:
    """The positions in a token; ValueError when it is not one of ours."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        return {int(k): int(v) for k, v in raw.items()}
    except (binascii.Error, json.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise ValueError("malformed consistency token") from None


async def wait(
    pool: asyncpg.Pool, projection: str, topic: str, positions: dict[int, int], bound: float
) -> bool:
    """Wait until the projection applied every position; False when `bound` seconds passed first.

    A write whose events were still in the outbox when it answered (`OUTBOX`) is first waited
    for there, until its batch is published and its positions are known.
    """
    deadline = time.monotonic() + bound
    wanted = dict(positions)
    pending = wanted.pop(OUTBOX, None)
    while True:
        async with pool.acquire() as conn:
            if pending is not None:
                published = await _published(conn, topic, pending)
                if published is not None:
                    pending = None
                    for partition, offset in published.items():
                        wanted[partition] = max(wanted.get(partition, -1), offset)
            if pending is None:
                reached = await checkpoints.load(conn, projection, topic, list(wanted))
                if all(reached[p] > offset for p, offset in wanted.items()):
                    return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)


# The outbox keeps published batches for minutes; a write's pending batches are among the last
# few thousand before the one its token names (those staged while the broker was away).
_LOOK_BACK = 10_000


async def _published(conn: asyncpg.Connection, topic: str, batch: int) -> dict[int, int] | None:
    """The highest offset in each partition of the outbox batches up to `batch`, once every one
    of them is published; None while one is not. Batches of other writers among them only make
    the wait cover events that were staged before this write's."""
    window = (topic, batch, _LOOK_BACK)
    try:
        if await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM ingest.outbox_batches WHERE topic = $1 "
            "AND id <= $2 AND id > $2 - $3 AND partitions IS NULL)",
            *window,
        ):
            return None
        rows = await conn.fetch(
            "SELECT u.partition, max(u.offset_) AS offset_ FROM ingest.outbox_batches b, "
            "unnest(b.partitions, b.offsets) AS u(partition, offset_) "
            "WHERE b.topic = $1 AND b.id <= $2 AND b.id > $2 - $3 GROUP BY u.partition",
            *window,
        )
    except asyncpg.UndefinedTableError:  # no outbox here (the PostgreSQL log): nothing pending
        return {}
    return {r["partition"]: r["offset_"] for r in rows}
