"""How long a consumer group stalls when one `--workers` member is SIGKILLed mid-backlog.

Publishes N profile events to a fresh topic, starts `profiles projector --workers 2` with small
batches (so the backlog outlasts the kill), SIGKILLs member 0 once a share of the events is
applied, and samples every partition's checkpoint every 50 ms until all are applied. Reports
the longest time after the kill in which no partition moved (the group's stall), each
partition's longest idle time after the kill, and when the backlog was done.

    python -m bench.failover_bench [--events 60000] [--kill-at 15000]

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (`python scripts/services up`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.projector_bench import SCHEMA, build_events, workers_process
from projections import read_models
from projections.migrate import migrate
from services.eventlog.kafka import KafkaLog
from services.local.scratch import scratch_database
from services.runtime import create_pool

Samples = list[tuple[float, dict[int, int]]]  # (seconds since start, partition -> next offset)


async def run(args: argparse.Namespace, database_url: str, bootstrap: str) -> dict[str, Any]:
    events = build_events(args.events, args.events // 10)
    topic = f"failover.{uuid.uuid4().hex[:12]}"
    async with scratch_database(database_url, prefix="failover") as url:
        pool = await create_pool(url, SCHEMA)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, SCHEMA)
            log = KafkaLog(bootstrap, topic=topic, partitions=args.partitions)
            await log.start()
            try:
                for start in range(0, len(events), 5000):
                    await log.append(events[start : start + 5000])
            finally:
                await log.stop()
            command, env = workers_process(
                url, bootstrap, topic, args.partitions, 2, args.batch, args.batch
            )
            with args.log.open("w") as out:
                child = await asyncio.create_subprocess_exec(
                    *command, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
                )
                try:
                    samples, killed_at = await _watch(pool, topic, args, child.pid)
                finally:
                    child.send_signal(signal.SIGTERM)
                    await child.wait()
        finally:
            await pool.close()
    return _summary(samples, killed_at, args)


async def _watch(
    pool: Any, topic: str, args: argparse.Namespace, supervisor: int
) -> tuple[Samples, float]:
    samples: Samples = []
    killed_at: float | None = None
    began = time.monotonic()
    while True:
        rows = await pool.fetch(
            "SELECT partition, next_offset FROM checkpoints WHERE projection = $1 AND topic = $2",
            read_models.NAME,
            topic,
        )
        now = time.monotonic() - began
        positions = {r["partition"]: r["next_offset"] for r in rows}
        samples.append((now, positions))
        done = sum(positions.values())
        if killed_at is None and done >= args.kill_at:
            os.kill(_first_member(args.log), signal.SIGKILL)
            killed_at = now
        if done >= args.events:
            break
        if now > args.timeout:
            raise TimeoutError(f"{done} of {args.events} applied after {now:.0f} s")
        await asyncio.sleep(0.05)
    if killed_at is None:
        raise RuntimeError("the backlog was done before the kill: raise --events")
    return samples, killed_at


def _first_member(log: Path) -> int:
    for line in log.read_text().splitlines():
        if '"workers.started"' in line:
            return int(json.loads(line)["pid"])
    raise RuntimeError("no member started")


def _summary(samples: Samples, killed_at: float, args: argparse.Namespace) -> dict[str, Any]:
    stall = 0.0
    moved_at, total_before = samples[0][0], -1
    last: dict[int, tuple[float, int]] = {}
    idle: dict[int, float] = {}
    for at, positions in samples:
        total = sum(positions.values())
        if total != total_before:
            if at >= killed_at:
                stall = max(stall, at - max(moved_at, killed_at))
            moved_at, total_before = at, total
        for partition, offset in positions.items():
            seen = last.get(partition)
            if seen is None or seen[1] != offset:
                if seen is not None and at >= killed_at:
                    idle[partition] = max(idle.get(partition, 0.0), at - max(seen[0], killed_at))
                last[partition] = (at, offset)
    return {
        "events": args.events,
        "killed_at_s": round(killed_at, 2),
        "done_after_kill_s": round(samples[-1][0] - killed_at, 2),
        "group_stall_s": round(stall, 2),
        "partition_idle_s": {p: round(s, 2) for p, s in sorted(idle.items())},
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.failover_bench", description=__doc__)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--kill-at", type=int, default=15_000, help="applied events at the kill")
    parser.add_argument("--batch", type=int, default=200, help="--batch-size and --max-batch")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--log", type=Path, default=Path("bench/out/failover-workers.log"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    database_url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not database_url or not bootstrap:
        print("set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (python scripts/services up)")
        return 2
    args.log.parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(run(args, database_url, bootstrap)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
