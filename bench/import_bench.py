"""File import end to end against a bare COPY of the same rows; GET p99 while an import runs.

    python -m bench.import_bench --rows 1000000

Needs DATABASE_URL (KAFKA_BOOTSTRAP_SERVERS optional: without it the PostgreSQL log is used, the
embedded default's path). One run: a fresh database; a CSV of N profiles with 10 custom fields;
a bare `COPY` of that file; the file import through the real job code with the projector as its
own process, timed until the last row is readable; then a query API process answering
`GET /v1/profiles/{id}` for random existing profiles, five seconds with nothing else running and
then while a second import runs, with latency percentiles of both. The importing process and
the projector run at the priority `PROFILES_BACKGROUND_NICE` gives them (as `profiles import`
and `profiles projector` do); the query API and its client do not. Prints a table and writes
bench/out/import-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import OUT_DIR, delete_topics, percentiles, say
from bench.common import write_floor as common_write_floor
from domain.fields import define_field
from projections import read_models
from services import consistency, file_imports, structure
from services.eventlog.port import Position
from services.import_worker import owning
from services.local._net import free_port
from services.local.scratch import scratch_database
from services.projector import CATCH_UP_BATCH
from services.runtime import Runtime, open_runtime, tune_gc
from services.settings import Settings

REPO = Path(__file__).resolve().parents[1]
KEY = "sp_benchadmin01_" + "b" * 40
TARGET_RATE = 30_000.0
TARGET_P99_MS = 10.0
FIELDS = (
    ("visits", "number", None),
    ("score", "float", None),
    ("plan", "enum", "free,basic,pro,team"),
    ("vip", "boolean", None),
    ("since", "date", None),
    ("last_ip", "ip", None),
    ("interests", "tags", None),
    ("company", "line", None),
    ("orders", "number", None),
    ("segment", "line", None),
)
HEADER = ["email", "first_name", "last_name", "phones", *(name for name, _, _ in FIELDS)]
_FIRST = ["Anna", "Ben", "Chloé", "David", "Emma", "Farid", "Greta", "Hugo", "Inès", "Jonas"]
_LAST = ["Martin", "Bernard", "Dubois", "Müller", "Rossi", "García", "Nowak", "Smith", "Kim"]


def write_csv(path: Path, rows: int, start: int = 0, seed: int = 42) -> None:
    """N profile rows with 10 custom fields, deterministic for a seed."""
    rng = random.Random(seed + start)
    base = datetime(2020, 1, 1, tzinfo=UTC)
    tags = ["shoes", "bags", "hats", "socks", "coats", "belts"]
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(HEADER) + "\n")
        for n in range(start, start + rows):
            since = base + timedelta(seconds=rng.randrange(150_000_000))
            out.write(
                f"user{n}@example.com,{rng.choice(_FIRST)},{rng.choice(_LAST)},"
                f"+4930{n:08d},{rng.randrange(1000)},{rng.random() * 100:.3f},"
                f"{rng.choice(('free', 'basic', 'pro', 'team'))},{rng.choice(('yes', 'no'))},"
                f"{since.isoformat()},10.{n % 250}.{n // 250 % 250}.{rng.randrange(1, 250)},"
                f"{'|'.join(rng.sample(tags, 2))},Company {n % 977},{rng.randrange(50)},"
                f"seg{n % 13}\n"
            )


async def bare_copy(url: str, path: Path) -> float:
    """Rows/s of a plain COPY of the file into a table of text columns (the floor)."""
    conn = await asyncpg.connect(url)
    try:
        columns = ", ".join(f"{c} text" for c in HEADER)
        await conn.execute(f"CREATE TABLE bench_copy ({columns})")
        began = time.perf_counter()
        result = await conn.copy_to_table("bench_copy", source=str(path), format="csv", header=True)
        seconds = time.perf_counter() - began
        await conn.execute("DROP TABLE bench_copy")
    finally:
        await conn.close()
    return int(result.split()[-1]) / seconds


# Every table an import writes, with the rows it writes there: the registry and identity claims
# of the ingest side, the PostgreSQL log, the profile read model and the history timeline.
WRITTEN = (
    "ingest.profiles",
    "ingest.identities",
    "eventlog.events",
    "read_models.profiles",
    "read_models.history",
)


async def write_floor(url: str, profiles: int) -> dict[str, Any]:
    """The rows the imports wrote, inserted again by PostgreSQL alone (`common.write_floor`):
    twice that rate bounds any import on two cores."""
    out = await common_write_floor(url, WRITTEN)
    total_s = out["s"]
    out["profiles"] = profiles
    out["us_per_profile"] = round(total_s / profiles * 1e6, 1)
    out["profiles_per_s_one_backend"] = round(profiles / total_s)
    out["profiles_per_s_two_cores_bound"] = round(2 * profiles / total_s)
    return out


async def create_database(rt: Runtime, database_id: str) -> None:
    """The database and its 10 custom fields, through the same code as the admin API."""
    async with rt.pool.acquire() as conn:
        events: list[Any] = [await structure.create(conn, database_id, "Bench")]
        for name, kind, options in FIELDS:
            async with conn.transaction():
                state = await structure.load(conn, database_id, lock=True)
                assert state is not None
                events.append(
                    await structure.add_field(conn, state, define_field(name, kind, options))
                )
    await rt.log.append(events)


async def import_file(rt: Runtime, database_id: str, path: Path) -> dict[str, Any]:
    """Run the import job here and wait until the projector made every row readable."""
    job_id = uuid.uuid4()
    began = time.perf_counter()
    async with owning(rt.pool, job_id):
        async with rt.pool.acquire() as conn:
            await file_imports.create(conn, database_id, "csv", False, path, job_id)
        job = await file_imports.run(rt.pool, rt.importer, job_id, collect_between_chunks=True)
    appended = time.perf_counter()
    positions = {int(p): o for p, o in job.positions.items()}
    token = consistency.token([Position(p, o) for p, o in positions.items()])
    reached = await consistency.wait(
        rt.pool, read_models.NAME, rt.log.topic, consistency.parse(token), 3600
    )
    readable = time.perf_counter()
    if not reached or job.state != "done":
        raise RuntimeError(f"import did not finish and become readable: {job}")
    return {
        "rows": job.rows_done,
        "created": job.created,
        "rejected": job.rejected,
        "append_s": round(appended - began, 2),
        "readable_s": round(readable - began, 2),
        "rows_per_s": round(job.rows_done / (readable - began)),
        "append_rows_per_s": round(job.rows_done / (appended - began)),
    }


def read_latencies(base: str, ids_in: Any, idle_done: Any, until: Any, out: Any) -> None:
    """Sequential GETs of random profiles (ids from `ids_in`): five seconds with nothing else
    running, then until `until` is set; each phase's latencies (ms) into `out`.

    Runs in its own process: measured from the importing process, its own busy event loop
    would be counted as server latency.
    """
    ids: list[str] = ids_in.get()
    rng = random.Random(3)
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:

        def phase(stop: Callable[[], bool]) -> list[float]:
            latencies: list[float] = []
            while not stop():
                began = time.perf_counter()
                response = client.get(f"/v1/profiles/{rng.choice(ids)}")
                latencies.append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(response.text)
            return latencies

        idle_until = time.perf_counter() + 5
        out.put(phase(lambda: time.perf_counter() > idle_until))
        idle_done.set()
        out.put(phase(until.is_set))


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`profiles ARGS` as its own process."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 -- our own entry point, fixed arguments
            [sys.executable, "-m", "services", *args],
            env={**os.environ, "PROFILES_LOG_FORMAT": "json", **env},
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


async def ready(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            try:
                if (await client.get(f"{base}/openapi.json")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{base} did not start")


async def bench(args: argparse.Namespace, server_url: str, kafka: str | None) -> dict[str, Any]:
    OUT_DIR.mkdir(exist_ok=True)
    first, second = OUT_DIR / "import-1.csv", OUT_DIR / "import-2.csv"
    say(f"writing {args.rows:,} + {args.second:,} rows")
    write_csv(first, args.rows)
    write_csv(second, args.second, start=args.rows)
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "log": "kafka" if kafka else "postgres",
        "projector_workers": args.projector_workers,
        "projector_max_batch": args.max_batch,
        "rows": args.rows,
        "custom_fields": len(FIELDS),
        "background_nice": Settings.from_env().background_nice,
    }
    async with scratch_database(server_url, prefix="bench") as url:
        result["bare_copy_rows_per_s"] = round(await bare_copy(url, first))
        say(f"bare COPY: {result['bare_copy_rows_per_s']:,} rows/s")
        topic = f"bench.import.{uuid.uuid4().hex[:8]}"
        env = {"DATABASE_URL": url, "PROFILES_EVENTS_TOPIC": topic, "PROFILES_BOOTSTRAP_KEY": KEY}
        if kafka:
            env["KAFKA_BOOTSTRAP_SERVERS"] = kafka
        settings = Settings(
            database_url=url,
            kafka_bootstrap=kafka,
            events_topic=topic,
            bootstrap_key=KEY,
            background_nice=result["background_nice"],
        )
        logs = OUT_DIR / "import-bench.log"
        workers = ["--workers", str(args.projector_workers)]
        sizes = ["--batch-size", str(args.batch_size), "--max-batch", str(args.max_batch)]
        projector = start(["projector", *sizes, *workers], env, logs)
        # the query API and its client start before this process lowers its priority as
        # `profiles import` does (children would inherit it): they stand for other processes
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        query = start(["query-api", "--port", str(port)], env, logs)
        spawn = multiprocessing.get_context("spawn")
        done, idle_done, ids_in, out = spawn.Event(), spawn.Event(), spawn.Queue(), spawn.Queue()
        reader = spawn.Process(
            target=read_latencies, args=(base, ids_in, idle_done, done, out), daemon=True
        )
        reader.start()
        rt: Runtime | None = None
        try:
            # lowers every thread of this process, as `profiles import` does
            rt = await open_runtime(settings, background=True)
            tune_gc()  # as `profiles import` and the API processes do
            await create_database(rt, "bench")
            say("importing (projector in its own process)")
            result["import"] = await import_file(rt, "bench", first)
            say(f"import: {result['import']}")
            await ready(base)
            ids = [
                str(r["profile_id"])
                for r in await rt.pool.fetch(
                    "SELECT profile_id FROM ingest.profiles TABLESAMPLE SYSTEM (5) LIMIT 20000"
                )
            ]
            ids_in.put(ids)
            idle = await asyncio.to_thread(out.get, timeout=120)
            await asyncio.to_thread(idle_done.wait, 120)
            result["get_idle"] = percentiles(idle)
            say(f"GET with nothing else running: {result['get_idle']}")
            say("second import while reading")
            result["import_while_reading"] = await import_file(rt, "bench", second)
            done.set()
            latencies = sorted(await asyncio.to_thread(out.get, timeout=120))
            result["get_during_import"] = percentiles(latencies)
            say(f"GET during import: {result['get_during_import']}")
        finally:
            reader.terminate()
            reader.join(10)
            stop(query)
            stop(projector)
            if rt is not None:
                await rt.close()
            if kafka:
                await delete_topics(kafka, topic)
        if args.floor:
            say("write floor: the same rows inserted again by PostgreSQL alone")
            profiles = result["import"]["created"] + result["import_while_reading"]["created"]
            result["write_floor"] = await write_floor(url, profiles)
            say(f"write floor: {result['write_floor']}")
    return result


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--second", type=int, default=100_000, help="rows imported while reading")
    parser.add_argument("--batch-size", type=int, default=5000, help="projector batch size")
    parser.add_argument(
        "--max-batch",
        type=int,
        default=CATCH_UP_BATCH,
        help="profiles projector --max-batch (0: off)",
    )
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the write floor after the imports",
    )
    parser.add_argument(
        "--projector-workers", type=int, default=1, help="profiles projector --workers (Kafka)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    server = os.environ.get("DATABASE_URL")
    if not server:
        print("DATABASE_URL is not set: see bench/README.md", file=sys.stderr)
        return 2
    result = asyncio.run(bench(args, server, os.environ.get("KAFKA_BOOTSTRAP_SERVERS")))
    rate = result["import"]["rows_per_s"]
    result["ratio_vs_bare_copy"] = round(rate / result["bare_copy_rows_per_s"], 3)
    result["meets_rate_target"] = rate >= TARGET_RATE
    p99 = result["get_during_import"].get("p99_ms")
    result["meets_p99_target"] = p99 is not None and p99 <= TARGET_P99_MS
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (OUT_DIR / f"import-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
