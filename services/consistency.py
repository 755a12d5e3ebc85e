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
from services.eventlog.port import Position


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
    """Wait until the projection applied every position; False when `bound` seconds passed first."""
    deadline = time.monotonic() + bound
    while True:
        async with pool.acquire() as conn:
            reached = await checkpoints.load(conn, projection, topic, list(positions))
        if all(reached[p] > offset for p, offset in positions.items()):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
