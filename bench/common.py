"""What the benchmarks share: progress lines, percentiles, running and saving a result."""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.runtime import run_loop

OUT_DIR = Path(__file__).resolve().parent / "out"


@contextmanager
def collector_off() -> Iterator[None]:
    """The cyclic garbage collector off while a no-database ceiling is timed: its passes over
    the ceiling's own bookkeeping (all it keeps in memory) are a cost no projector has."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
    result = run_loop(bench(server))  # the loop the service's roles run on
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


FLOOR_CHUNK = 5000


async def write_floor(url: str, tables: Sequence[str]) -> dict[str, Any]:
    """The rows a run wrote, inserted again by PostgreSQL alone, table by table.

    Each table's rows are copied into an unindexed temporary table first (not timed); then
    `INSERT … SELECT` puts them, 5,000 at a time in their first order, into an empty (logged)
    copy of the table with all its indexes and constraints. No Python, no decoding, no
    validation: what writing the rows the design keeps costs by itself, on one backend. It is
    CPU work, so no run on two cores that writes these rows can spend less than half of it
    in wall-clock time.
    """
    import asyncpg

    conn = await asyncpg.connect(url)
    out: dict[str, Any] = {"tables": {}}
    total_s = 0.0
    try:
        for table in tables:
            if await conn.fetchval("SELECT to_regclass($1)", table) is None:
                continue  # e.g. the PostgreSQL log only exists when it is the log
            await conn.execute(
                f"CREATE TEMP TABLE floor_rows AS SELECT row_number() OVER () AS n, t.* "
                f"FROM {table} t; CREATE INDEX ON floor_rows (n); "
                f"CREATE TABLE public.floor_target (LIKE {table} INCLUDING ALL); ANALYZE floor_rows"
            )
            names = await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum",
                table,
            )
            columns = ", ".join(f'"{r["attname"]}"' for r in names)
            rows = await conn.fetchval("SELECT count(*) FROM floor_rows")
            began = time.perf_counter()
            for low in range(0, rows, FLOOR_CHUNK):
                await conn.execute(
                    f"INSERT INTO public.floor_target ({columns}) OVERRIDING SYSTEM VALUE "
                    f"SELECT {columns} FROM floor_rows WHERE n > $1 AND n <= $2",
                    low,
                    low + FLOOR_CHUNK,
                )
            seconds = time.perf_counter() - began
            await conn.execute("DROP TABLE floor_rows, public.floor_target")
            total_s += seconds
            out["tables"][table] = {
                "rows": rows,
                "s": round(seconds, 2),
                "us_per_row": round(seconds / max(rows, 1) * 1e6, 1),
            }
    finally:
        await conn.close()
    out["s"] = round(total_s, 2)
    return out


def two_core_bound(
    floor: dict[str, Any],
    events: int,
    python_rate: float,
    *,
    read_us: float = 0.0,
    encode_us: float = 0.0,
) -> dict[str, Any]:
    """What two cores allow at best: each event costs at least PostgreSQL's share of the write
    floor (`write_floor`) plus its Python share (`python_rate`, the caller's fastest decode and
    fold with no database), plus what the caller measured of reading the log (`read_us`, the
    CPU a record of a bare consumer) and of encoding the rows (`encode_us`, at a bare COPY's
    cost a row), all CPU work; two cores give two CPU-seconds a second. Whatever a caller
    leaves out (0) is left out in the bound's favour."""
    pg_us = floor["s"] / events * 1e6
    python_us = 1e6 / python_rate
    return {
        "postgres_us_per_event": round(pg_us, 1),
        "python_us_per_event": round(python_us, 1),
        "read_us_per_event": round(read_us, 1),
        "encode_us_per_event": round(encode_us, 1),
        "events_per_s": round(2 * 1e6 / (pg_us + python_us + read_us + encode_us)),
    }
