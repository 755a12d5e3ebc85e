"""`GET /v1/profiles/{id}/history` latency at 10,000,000 timeline rows.

    python -m bench.history_bench --rows 10000000 --profiles 100000

Needs DATABASE_URL. Fills a fresh database's timeline set-based in SQL (`generate_series`: the
kinds and types of R18 over the last 30 days, 100 rows per profile on average), creates the
profiles' read-model rows, then measures sequential GETs of random profiles' default page (last
7 days, newest first, 100 entries), a kind-filtered page and a second page by cursor, from a
separate client process against `profiles query-api`. Writes bench/out/history-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench.common import OUT_DIR, percentiles, run, say
from bench.import_bench import KEY, ready, start, stop
from projections.migrate import migrate
from services.local._net import free_port
from services.local.scratch import scratch_database

SCHEMA = "read_models"
TARGET_P99_MS = 20.0
_FILL = """
INSERT INTO history (profile_id, event_id, at, kind, type, summary)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(n % $2), 12, '0'))::uuid,
       gen_random_uuid(),
       now() - make_interval(secs => (n * 7919 % 2592000)),
       (ARRAY['campaign', 'campaign', 'campaign', 'pixel', 'subscription', 'promo',
              'segment'])[1 + n % 7],
       (ARRAY['campaign.opened','campaign.clicked','campaign.delivered','pixel.hit',
              'subscription.added','promo_code.attached','segment.entered'])[1 + n % 7],
       json_build_object('campaign_id', 'c' || (n % 50), 'n', n)
FROM generate_series($1::bigint, $1::bigint + $3 - 1) AS n
"""


async def fill(url: str, rows: int, profiles: int) -> float:
    """Rows/s of the set-based fill (also the profiles' rows, so reads find them)."""
    conn = await asyncpg.connect(url, server_settings={"search_path": SCHEMA})
    try:
        await migrate(conn, SCHEMA)
        await conn.execute(
            "INSERT INTO profiles (profile_id, database_id, md5_id, xxh_id, status, created_at, "
            "updated_at, version) SELECT ('00000000-0000-4000-8000-' || "
            "lpad(to_hex(n), 12, '0'))::uuid, 'bench', md5(n::text), to_hex(n), 'subscribed', "
            "now(), now(), 1 FROM generate_series(0, $1 - 1) AS n",
            profiles,
        )
        began = time.perf_counter()
        step = 1_000_000
        for first in range(0, rows, step):
            await conn.execute(_FILL, first, profiles, min(step, rows - first))
            say(f"history rows: {min(first + step, rows):,}")
        seconds = time.perf_counter() - began
        await conn.execute("ANALYZE history")
    finally:
        await conn.close()
    return rows / seconds


def read(base: str, profiles: int, requests: int, out: Any) -> None:
    """Sequential GETs from their own process: default pages, kind filters, second pages."""
    rng = random.Random(5)
    timings: dict[str, list[float]] = {"default": [], "kind": [], "cursor": []}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for _ in range(requests):
            pid = f"00000000-0000-4000-8000-{rng.randrange(profiles):012x}"
            began = time.perf_counter()
            page = client.get(f"/v1/profiles/{pid}/history", params={"limit": 20})
            timings["default"].append((time.perf_counter() - began) * 1000)
            if page.status_code != 200:
                raise RuntimeError(page.text)
            began = time.perf_counter()
            client.get(f"/v1/profiles/{pid}/history", params={"kind": ["pixel", "promo"]})
            timings["kind"].append((time.perf_counter() - began) * 1000)
            cursor = page.json()["cursor"]
            if cursor:
                began = time.perf_counter()
                client.get(f"/v1/profiles/{pid}/history", params={"limit": 20, "cursor": cursor})
                timings["cursor"].append((time.perf_counter() - began) * 1000)
    out.put(timings)


async def bench(args: argparse.Namespace, server_url: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "rows": args.rows,
        "profiles": args.profiles,
    }
    async with scratch_database(server_url, prefix="bench") as url:
        result["fill_rows_per_s"] = round(await fill(url, args.rows, args.profiles))
        port = free_port()
        env = {"DATABASE_URL": url, "PROFILES_BOOTSTRAP_KEY": KEY}
        query = start(["query-api", "--port", str(port)], env, OUT_DIR / "history-bench.log")
        try:
            base = f"http://127.0.0.1:{port}"
            await ready(base)
            spawn = multiprocessing.get_context("spawn")
            out = spawn.Queue()
            reader = spawn.Process(target=read, args=(base, args.profiles, args.requests, out))
            reader.start()
            timings = await asyncio.to_thread(out.get)
            reader.join()
        finally:
            stop(query)
    for name, ms in timings.items():
        result[f"get_{name}"] = percentiles(sorted(ms))
    result["meets_p99_target"] = result["get_default"]["p99_ms"] <= TARGET_P99_MS
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    return run("history", lambda server: bench(args, server))


if __name__ == "__main__":
    raise SystemExit(main())
