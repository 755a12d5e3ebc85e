"""Every read-model store has a consumer group of its own: projectors writing other stores from
one topic each fold every partition, while the processes of one store still share a group."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from projections import read_models
from projections.store import store_id
from services.eventlog.kafka import KafkaLog
from services.eventlog.port import EventLog
from services.eventlog.postgres import PostgresLog
from services.local.scratch import with_database
from services.projector import Projector
from tests.factories import imported, updated
from tests.integration.procs import group_members, start_profiles, terminate, wait_for
from tests.pg import fresh_database, migrated

pytestmark = pytest.mark.postgres

PROFILES = 400
APPLIED = "SELECT coalesce(sum(next_offset), 0) FROM checkpoints"
ALL_PARTITIONS = {0, 1, 2, 3}


async def each_applies_every_event(log: EventLog, pools: list[asyncpg.Pool], total: int) -> None:
    """Run a projector, as `profiles serve` builds one, on each store at once; every store
    must reach `total` records applied, each event once."""
    stop = asyncio.Event()
    runners = [
        Projector(pool, log, read_models.NAME, read_models.project, poll_timeout=0.1)
        for pool in pools
    ]
    tasks = [asyncio.create_task(runner.run(stop)) for runner in runners]
    try:
        reached = await asyncio.gather(
            *(wait_for(pool, APPLIED, lambda n: n == total, 30) for pool in pools)
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert reached == [total] * len(pools), "a store missed another store's partitions"
    for pool in pools:
        assert await pool.fetchval("SELECT count(*) FROM profiles") == total
        assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 0


@pytest.mark.kafka
@pytest.mark.parametrize("apart", ["in two schemas", "in two databases"])
async def test_projectors_of_two_stores_on_one_topic_each_apply_every_partition(
    database_url: str, kafka_bootstrap: str, apart: str
) -> None:
    """Both projectors once joined one group (`read_models`), and Kafka split the topic's
    partitions between them: each store silently lacked the other's partitions' events."""
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(fresh_database(database_url))
        second = first
        if apart == "in two databases":
            second = await stack.enter_async_context(fresh_database(database_url))
        pools = [
            await stack.enter_async_context(migrated(first, "store_a")),
            await stack.enter_async_context(migrated(second, "store_b")),
        ]
        log = KafkaLog(kafka_bootstrap, topic=f"stores.{uuid.uuid4().hex}", partitions=4)
        await log.start()
        stack.push_async_callback(log.stop)
        await log.append([imported(uuid.uuid4(), n) for n in range(PROFILES)])
        filled = {p for p, n in (await log.ends()).items() if n > 0}
        assert filled == ALL_PARTITIONS  # the case: events in every partition

        await each_applies_every_event(log, pools, PROFILES)


async def test_projectors_of_two_schemas_on_one_postgres_log_both_fold_it(
    database_url: str,
) -> None:
    """On the PostgreSQL log a group is an advisory lock held by its one active member: the
    second store's projector once stood by for ever behind the first's."""
    async with (
        fresh_database(database_url) as url,
        migrated(url, "store_a") as a,
        migrated(url, "store_b") as b,
    ):
        log = PostgresLog(a)
        await log.start()
        await log.append([imported(uuid.uuid4(), n) for n in range(PROFILES)])

        await each_applies_every_event(log, [a, b], PROFILES)


async def test_a_store_keeps_its_id_and_another_schema_has_its_own(database_url: str) -> None:
    async with (
        fresh_database(database_url) as url,
        migrated(url, "store_a") as a,
        migrated(url, "store_b") as b,
    ):
        ids = [await _id(a), await _id(a), await _id(b)]
        async with migrated(url, "store_a") as again:  # migrating again makes no new one
            ids.append(await _id(again))
    assert ids[0] == ids[1] == ids[3]
    assert ids[2] != ids[0]


async def test_a_renamed_schema_takes_a_new_id_that_its_processes_agree_on(
    database_url: str,
) -> None:
    """A schema under another name may be a copy beside its original: it must not keep the
    original's group. Processes starting on it at once (`--workers`) all see the one new id."""
    async with fresh_database(database_url) as url:
        async with migrated(url, "store_a") as a:
            original = await _id(a)
            await a.execute("ALTER SCHEMA store_a RENAME TO store_c")
        async with migrated(url, "store_c") as c:
            seen = await asyncio.gather(*(_id(c) for _ in range(8)))
            later = await _id(c)
    assert len(set(seen)) == 1
    assert seen[0] != original
    assert later == seen[0]


async def test_a_database_copied_from_a_template_gets_a_store_id_of_its_own(
    database_url: str,
) -> None:
    """`CREATE DATABASE … TEMPLATE` copies the store's row too (a staging copy of production):
    the copy must not join the original's group."""
    async with fresh_database(database_url) as url:
        async with migrated(url, "read_models") as original:
            before = await _id(original)
        name = f"t_copy_{uuid.uuid4().hex[:12]}"
        source = url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
            try:
                async with migrated(with_database(database_url, name), "read_models") as copy:
                    copied = await _id(copy)
                async with migrated(url, "read_models") as original:
                    after = await _id(original)
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
    assert copied != before
    assert after == before  # the original keeps its id, hence its group and members


async def _id(pool: asyncpg.Pool) -> uuid.UUID:
    async with pool.acquire() as conn:
        return await store_id(conn)


def _lines(path: Path, event: str) -> list[dict[str, Any]]:
    """The JSON log lines of `event` a process wrote to `path`."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if f'"{event}"' in line]


def _held(path: Path) -> list[set[int]]:
    """The partitions of each assignment logged at `path`, in order."""
    return [{int(p) for p in line["checkpoints"]} for line in _lines(path, "projector.assigned")]


def _tail(path: Path, lines: int = 30) -> str:
    return "\n--- log tail ---\n" + "\n".join(path.read_text().splitlines()[-lines:])


@pytest.mark.kafka
@pytest.mark.slow
async def test_workers_of_one_store_share_a_group_that_another_store_never_joins(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`profiles projector --workers 2` on one schema and `profiles projector` on another, one
    topic: the two members split the partitions in one group; the other store's projector,
    in a group of its own, holds all four; both stores get every event once."""
    topic = f"stores.{uuid.uuid4().hex}"
    async with (
        fresh_database(database_url) as url,
        migrated(url, "store_a") as a,
        migrated(url, "store_b") as b,
    ):
        log = KafkaLog(kafka_bootstrap, topic=topic, partitions=4)
        await log.start()
        base = {"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
        env = {**base, "PROFILES_EVENTS_TOPIC": topic}
        logs = tmp_path / "a.log", tmp_path / "b.log"
        procs = [
            start_profiles(
                ["projector", "--workers", "2", "--read-schema", "store_a"], env, logs[0]
            ),
            start_profiles(["projector", "--read-schema", "store_b"], env, logs[1]),
        ]
        try:
            for _ in range(300):  # settled: a's members split the four, b holds all four
                pair, alone = _held(logs[0])[-2:], _held(logs[1])[-1:]
                if (
                    len(pair) == 2
                    and pair[0] | pair[1] == ALL_PARTITIONS
                    and not pair[0] & pair[1]
                    and alone == [ALL_PARTITIONS]
                ):
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"the groups never settled{_tail(logs[0])}{_tail(logs[1])}")
            started = [[line["group"] for line in _lines(p, "projector.started")] for p in logs]
            assert len(set(started[0])) == 1, _tail(logs[0])  # both members: one group
            assert len(started[0]) == 2, _tail(logs[0])
            assert started[1][0] != started[0][0]
            members = await group_members(kafka_bootstrap, started[0][0])
            assert len(members) == 2

            pids = [uuid.uuid4() for _ in range(PROFILES)]
            await log.append([imported(pid, 0) for pid in pids])
            await log.append([updated(pid, 1, set={"n": 1}) for pid in pids])
            total = 2 * PROFILES
            for pool in (a, b):
                assert await wait_for(pool, APPLIED, lambda n: n == total, 60) == total
                assert await pool.fetchval("SELECT count(*) FROM applied_events") == total
                versions = await pool.fetch("SELECT DISTINCT version FROM profiles")
                assert [r["version"] for r in versions] == [2]  # each event applied once
        finally:
            codes = [terminate(proc) for proc in procs]
            await log.stop()
        assert codes == [0, 0], _tail(logs[0]) + _tail(logs[1])
