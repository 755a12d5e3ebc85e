"""What the benchmarks share: progress lines, percentiles, running and saving a result."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "out"


async def delete_topics(bootstrap: str, *topics: str) -> None:
    """Remove a run's topics: left behind, hundreds of them slow the broker of later runs."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in topics if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def decode_rate(payloads: list[bytes]) -> float:
    """Events/s of decoding alone (bytes to a validated event, as the projector must for each):
    the ceiling of any projector of these events on one core, whatever it writes."""
    from contracts import decode

    began = time.perf_counter()
    for payload in payloads:
        decode(payload)
    return len(payloads) / (time.perf_counter() - began)


def say(message: str) -> None:
    """A timestamped progress line on stderr (stdout carries the result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentiles(ms: list[float]) -> dict[str, float]:
    """Count, p50, p95, p99 and max of latencies in milliseconds."""
    ordered = sorted(ms)
    if len(ordered) < 2:  # a run too short to measure: say so rather than fail
        return {"requests": len(ordered), "max_ms": round(ordered[-1], 2) if ordered else 0.0}
    q = statistics.quantiles(ordered, n=100)
    return {
        "requests": len(ordered),
        "p50_ms": round(q[49], 2),
        "p95_ms": round(q[94], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(ordered[-1], 2),
    }


def run(name: str, bench: Callable[[str], Coroutine[Any, Any, dict[str, Any]]]) -> int:
    """Run `bench(DATABASE_URL)`, print its result and keep it in bench/out/<name>-<ts>.json."""
    server = os.environ.get("DATABASE_URL")
    if not server:
        print("DATABASE_URL is not set: see bench/README.md", file=sys.stderr)
        return 2
    result = asyncio.run(bench(server))
    OUT_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (OUT_DIR / f"{name}-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


async def table_writes(pool: Any) -> dict[str, dict[str, int]]:
    """Rows inserted, updated (and of those HOT, touching no index) and deleted, per table.

    Counters are cumulative: take two and subtract (`writes_between`).
    """
    rows = await pool.fetch(
        "SELECT schemaname || '.' || relname AS name, n_tup_ins, n_tup_upd, n_tup_hot_upd, "
        "n_tup_del FROM pg_stat_user_tables"
    )
    return {
        r["name"]: {
            "inserted": r["n_tup_ins"],
            "updated": r["n_tup_upd"],
            "hot": r["n_tup_hot_upd"],
            "deleted": r["n_tup_del"],
        }
        for r in rows
    }


def writes_between(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """The tables written between two `table_writes`, with what changed."""
    out = {}
    for name, now in sorted(after.items()):
        was = before.get(name, {})
        moved = {k: v - was.get(k, 0) for k, v in now.items() if v != was.get(k, 0)}
        if moved:
            out[name] = moved
    return out
