"""Rebuilding the read models from a Kafka topic by one process and by several.

    python -m bench.rebuild_bench --events 200000 --profiles 20000 --partitions 4 --workers 2

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (see bench/README.md). One run publishes the
projector benchmark's events to a fresh topic `bench.<uuid>` (not timed) in a fresh database,
then runs `profiles projections rebuild --into <schema>` as its own process: once as one
process, once with `--workers N`, alternating `--rounds` times, each into a new schema. Reported
per run: the events the command says it rebuilt, its own time (from the end the log had to the
end reached, spawning the processes included) and the wall time of the whole command (starting
the interpreter, connecting, migrating). Writes bench/out/rebuild-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bench.common import delete_topics, run
from bench.projector_bench import build_events, publish
from services.eventlog.kafka import KafkaLog
from services.local.scratch import scratch_database

_DONE = re.compile(r"rebuilt (\d+) events into schema '(\w+)' in ([\d.]+) s")


def rebuild_once(url: str, bootstrap: str, topic: str, workers: int) -> dict[str, Any]:
    """One `profiles projections rebuild` into a new schema: its own figures and the wall time."""
    schema = f"rebuild_{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, PROFILES_EVENTS_TOPIC=topic, PROFILES_LOG_FORMAT="json")
    command = [sys.executable, "-m", "services", "projections", "rebuild", "--into", schema]
    command += ["--database-url", url, "--kafka", bootstrap, "--workers", str(workers)]
    began = time.perf_counter()
    done = subprocess.run(  # noqa: S603 -- our own entry point, fixed arguments
        command, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - began
    found = _DONE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"rebuild failed ({done.returncode}): {done.stderr[-2000:]}")
    events, seconds = int(found.group(1)), float(found.group(3))
    return {
        "workers": workers,
        "schema": schema,
        "events": events,
        "seconds": seconds,
        "events_per_s": round(events / seconds),
        "wall_s": round(wall, 2),
    }


async def bench(args: argparse.Namespace, server: str, bootstrap: str) -> dict[str, Any]:
    topic = f"bench.{uuid.uuid4()}"
    events = build_events(args.events, args.profiles)
    async with scratch_database(server, prefix="rebuild") as url:
        log = KafkaLog(bootstrap, topic=topic, partitions=args.partitions)
        await log.start()
        try:
            await publish(log, events, 5000)
        finally:
            await log.stop()
        runs: list[dict[str, Any]] = []
        try:
            for _ in range(args.rounds):
                for workers in (1, args.workers):
                    one = await asyncio.to_thread(rebuild_once, url, bootstrap, topic, workers)
                    print(f"[bench] {one}", file=sys.stderr)
                    runs.append(one)
        finally:
            await delete_topics(bootstrap, topic)
    return {
        "bench": "rebuild",
        "when": datetime.now(UTC).isoformat(),
        "events": args.events,
        "profiles": args.profiles,
        "partitions": args.partitions,
        "cpus": os.cpu_count(),
        "runs": runs,
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="processes of the second kind")
    parser.add_argument("--rounds", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        print("KAFKA_BOOTSTRAP_SERVERS is not set: see bench/README.md", file=sys.stderr)
        return 2
    return run("rebuild", lambda server: bench(args, server, bootstrap))


if __name__ == "__main__":
    raise SystemExit(main())
