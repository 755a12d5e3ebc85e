"""Mixed public events through the Kafka intake into every read model (issue 5).

    python -m bench.intake_bench --events 200000 --profiles 100000 --projector-workers 2

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS. One run: a fresh database, a fresh canonical and
intake topic; `profiles projector` and `profiles intake` as their own processes; the profiles
imported through the file-import job code and `--subscribed` of them subscribed (not timed); then
`--events` public events published to the intake topic as fast as the producer goes, in the
issue's mix — 70 % campaign actions (sent, delivered, opened, clicked; opens and clicks with an
IP), 20 % pixel hits with an IP, 10 % profile and subscription changes (forms that update UTM;
unsubscribe clicks, complaints and hard bounces that move a subscription) — timed until the read
models' checkpoints cover every canonical event.
Then the publish-to-readable lag at half that rate: probe events published every 50 ms among
the paced load, each timed until its timeline row exists. Writes bench/out/intake-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.common import OUT_DIR, delete_topics, percentiles, say, table_writes, writes_between
from bench.import_bench import create_database, import_file, start, stop, write_csv
from contracts.intake import ProfileRef, PublicEvent
from domain.resources import Resource
from projections import read_models
from services import resources
from services.eventlog.kafka import send_batched
from services.local.scratch import scratch_database
from services.publisher import partition_key
from services.runtime import open_runtime
from services.settings import Settings
from services.subscribing import NewSubscription, Subscriptions

TARGET_RATE = 10_000.0
TARGET_LAG_P99_MS = 1000.0


RESOURCE = "bench_news"
REACTIONS = ("campaign.unsubscribe_clicked", "campaign.complained", "campaign.hard_bounced")


def workload(
    ids: Sequence[UUID], subscribed: Sequence[tuple[UUID, UUID]], n: int, seed: int = 11
) -> tuple[list[tuple[bytes, bytes]], int]:
    """n public events as the (value, key) a publisher sends, in the issue's mix; and how many
    of them move a subscription (each appends one more canonical event).

    70 % campaign actions (sent, delivered, opened, clicked), 20 % pixel hits, 10 % profile and
    subscription changes: forms that update UTM (5 %) and unsubscribe clicks, complaints and
    hard bounces (5 %), each on a different subscribed profile, half naming the subscription and
    half only the resource and channel it was sent through.
    """
    rng = random.Random(seed)
    pending = list(subscribed)
    rng.shuffle(pending)
    out = []
    moves = 0
    for i in range(n):
        pid = rng.choice(ids)
        roll = rng.random()
        data: dict[str, Any]
        if roll < 0.7:
            kind = rng.choice(
                ["campaign.sent", "campaign.delivered", "campaign.opened", "campaign.clicked"]
            )
            data = {"campaign_id": f"c{i % 40}", "message_id": f"m{i}"}
            if kind in ("campaign.opened", "campaign.clicked"):
                data["ip"] = rng.choice(["81.2.69.142", "192.0.2.10", "198.51.100.7"])
        elif roll < 0.9:
            kind = "pixel.hit"
            data = {"goal": "view", "value": 1.0, "ip": "203.0.113.99", "pixel_data": {"n": i}}
        elif roll < 0.95 or not pending:
            kind = "form.submitted"
            data = {"form_id": "f", "utm": {"utm_source": f"s{i % 9}"}, "update_utm": True}
        else:
            pid, sub_id = pending.pop()
            kind = REACTIONS[i % len(REACTIONS)]
            data = {"campaign_id": f"c{i % 40}", "resource_id": RESOURCE, "channel": "email"}
            if i % 2:
                data["sub_id"] = str(sub_id)
            moves += 1
        event = PublicEvent(
            id=uuid.uuid4(),
            type=kind,
            source="/bench",
            profile=ProfileRef(profile_id=pid),
            data=data,
        )
        out.append((event.model_dump_json().encode(), partition_key(event.profile)))
    return out, moves


async def subscribe(rt: Any, database_id: str, ids: Sequence[UUID]) -> list[tuple[UUID, UUID]]:
    """One email subscription in one resource for each of `ids`, through the intake's code."""
    async with rt.pool.acquire() as conn:
        created = await resources.create(
            conn, Resource(RESOURCE, database_id, "News", channels=("email",))
        )
    await rt.log.append([created])
    subscriptions = Subscriptions(rt.pool, rt.log)
    out: list[tuple[UUID, UUID]] = []

    async def one(pid: UUID) -> None:
        new = NewSubscription(
            resource_id=RESOURCE, channel="email", contact=f"{pid.hex}@example.com"
        )
        out.append((pid, (await subscriptions.add(pid, new)).sub_id))

    for first in range(0, len(ids), 8):
        await asyncio.gather(*(one(pid) for pid in ids[first : first + 8]))
    return out


async def applied(pool: asyncpg.Pool, topic: str) -> int:
    """Canonical events the read models have applied (the sum of their checkpoints)."""
    value = await pool.fetchval(
        "SELECT coalesce(sum(next_offset), 0) FROM checkpoints "
        "WHERE projection = $1 AND topic = $2",
        read_models.NAME,
        topic,
    )
    return int(value)


async def publish_all(
    producer: AIOKafkaProducer, topic: str, records: list[tuple[bytes, bytes]]
) -> None:
    # upstream publishers sending many events use record batches (services.publisher.publish_many)
    for first in range(0, len(records), 5000):
        chunk = records[first : first + 5000]
        await send_batched(producer, topic, [(key, value, []) for value, key in chunk])


async def lag(
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    topic: str,
    ids: Sequence[UUID],
    rate: float,
    seconds: float,
) -> list[float]:
    """Probe lags (ms) while `rate` events/s of load are published for `seconds`."""
    load, _ = workload(ids, [], int(rate * seconds), seed=23)
    probe_profile = ids[0]
    waiting: dict[str, float] = {}
    lags: list[float] = []

    async def watch() -> None:
        while waiting or not done.is_set():
            if waiting:
                rows = await pool.fetch(
                    "SELECT summary->>'trigger_id' AS t FROM history WHERE profile_id = $1 "
                    "AND type = 'trigger.sent' AND summary->>'trigger_id' = ANY($2::text[])",
                    probe_profile,
                    list(waiting),
                )
                now = time.perf_counter()
                lags.extend((now - waiting.pop(r["t"])) * 1000 for r in rows)
            await asyncio.sleep(0.005)

    done = asyncio.Event()
    watcher = asyncio.create_task(watch())
    began = time.perf_counter()
    step = max(1, int(rate / 20))  # 20 slices a second, a probe in each
    for n, first in enumerate(range(0, len(load), step)):
        target = began + n / 20
        await asyncio.sleep(max(0.0, target - time.perf_counter()))
        for value, key in load[first : first + step]:
            await producer.send(topic, value, key=key)
        probe = PublicEvent(
            id=uuid.uuid4(), type="trigger.sent", source="/bench/probe",
            profile=ProfileRef(profile_id=probe_profile), data={"trigger_id": f"p{n}"},
        )  # fmt: skip
        waiting[f"p{n}"] = time.perf_counter()
        await producer.send(
            topic, probe.model_dump_json().encode(), key=partition_key(probe.profile)
        )
    await producer.flush()
    done.set()
    await asyncio.wait_for(watcher, 120)
    return lags


async def bench(args: argparse.Namespace, server_url: str, kafka: str) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    canonical, intake = f"bench.events.{tag}", f"bench.intake.{tag}"
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "events": args.events,
        "profiles": args.profiles,
        "partitions": args.partitions,
        "projector_workers": args.projector_workers,
        "intake_workers": args.intake_workers,
        "intake_batch": args.intake_batch,
    }
    async with scratch_database(server_url, prefix="bench") as url:
        settings = Settings(
            database_url=url, kafka_bootstrap=kafka, events_topic=canonical,
            kafka_partitions=args.partitions,
        )  # fmt: skip
        rt = await open_runtime(settings)
        env = {
            "DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "PROFILES_EVENTS_TOPIC": canonical, "PROFILES_INTAKE_TOPIC": intake,
            "PROFILES_KAFKA_PARTITIONS": str(args.partitions),
        }  # fmt: skip
        logs = OUT_DIR / "intake-bench.log"
        OUT_DIR.mkdir(exist_ok=True)
        procs = [
            start(["projector", "--workers", str(args.projector_workers)], env, logs),
            start(
                [
                    "intake",
                    "--workers",
                    str(args.intake_workers),
                    "--batch-size",
                    str(args.intake_batch),
                ],
                env,
                logs,
            ),
        ]
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka, acks="all", linger_ms=20, max_batch_size=262144
        )
        await producer.start()
        try:
            await create_database(rt, "bench")
            csv = OUT_DIR / "intake-profiles.csv"
            write_csv(csv, args.profiles)
            say(f"importing {args.profiles:,} profiles (not timed)")
            result["profile_import"] = await import_file(rt, "bench", csv)
            ids = [
                r["profile_id"]
                for r in await rt.pool.fetch("SELECT profile_id FROM ingest.profiles")
            ]
            say(f"subscribing {args.subscribed:,} profiles (not timed)")
            subscribed = await subscribe(rt, "bench", ids[: args.subscribed])
            records, moves = workload(ids, subscribed, args.events)
            # settled first, as pgbench does: otherwise autovacuum of the setup's rows lands in
            # the timed window in some runs and not in others
            await rt.pool.execute("VACUUM ANALYZE")
            result["subscription_moves"] = moves
            before = await applied(rt.pool, canonical)
            tables = await table_writes(rt.pool)
            say(f"publishing {args.events:,} public events")
            began = time.perf_counter()
            await publish_all(producer, intake, records)
            published = time.perf_counter()
            # one canonical event per public event, and a status change per subscription move
            while await applied(rt.pool, canonical) < before + args.events + moves:  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # polling the database, not a flag of this process
            readable = time.perf_counter()
            rate = args.events / (readable - began)
            result["publish_s"] = round(published - began, 2)
            result["end_to_end_s"] = round(readable - began, 2)
            result["events_per_s"] = round(rate)
            say(f"end to end: {rate:,.0f} events/s")
            await asyncio.sleep(1.5)  # backends report their table counters at most once a second
            result["table_writes"] = writes_between(tables, await table_writes(rt.pool))
            lags = await lag(rt.pool, producer, intake, ids, rate / 2, args.lag_seconds)
            result["lag_at_half_rate"] = {"rate": round(rate / 2), **percentiles(lags)}
            say(f"lag at half rate: {result['lag_at_half_rate']}")
            result["dead_letters"] = await rt.pool.fetchval("SELECT count(*) FROM dead_letters")
            result["history_rows"] = await rt.pool.fetchval("SELECT count(*) FROM history")
        finally:
            await producer.stop()
            for proc in procs:
                stop(proc)
            await rt.close()
            await delete_topics(kafka, canonical, intake, f"{intake}.dlq")
    result["meets_rate_target"] = result["events_per_s"] >= TARGET_RATE
    p99 = result["lag_at_half_rate"].get("p99_ms")
    result["meets_lag_target"] = p99 is not None and p99 <= TARGET_LAG_P99_MS
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    parser.add_argument(
        "--subscribed", type=int, default=12_000, help="profiles given a subscription first"
    )
    parser.add_argument(
        "--projector-workers", type=int, default=1, help="profiles projector --workers"
    )
    parser.add_argument("--intake-workers", type=int, default=1, help="profiles intake --workers")
    parser.add_argument(
        "--intake-batch", type=int, default=1000, help="profiles intake --batch-size"
    )
    args = parser.parse_args(argv)
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not kafka:
        print("KAFKA_BOOTSTRAP_SERVERS is not set: see bench/README.md")
        return 2
    from bench.common import run

    return run("intake", lambda server: bench(args, server, kafka))


if __name__ == "__main__":
    raise SystemExit(main())
