"""Crash and scale-out: SIGKILLed projectors lose nothing and apply nothing twice (DESIGN 3)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from contracts import Event
from projections.migrate import migrate
from services.eventlog.kafka import KafkaLog
from services.runtime import create_pool
from services.settings import Settings
from tests.factories import imported, updated
from tests.integration.procs import group_members, kill, start_profiles, terminate, wait_for
from tests.pg import fresh_database

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

SCHEMA = "read_models"
PROFILES, PER_PROFILE = 1000, 10
TOTAL = PROFILES * PER_PROFILE
APPLIED = "SELECT count(*) FROM applied_events"


@dataclass
class Stage:
    pool: asyncpg.Pool
    log: KafkaLog
    env: dict[str, str]


@pytest.fixture
async def stage(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Stage]:
    topic = f"crash.{uuid.uuid4().hex}"
    async with fresh_database(database_url) as url:
        pool = await create_pool(url, SCHEMA)
        async with pool.acquire() as conn:
            await migrate(conn, SCHEMA)
        log = KafkaLog(kafka_bootstrap, topic=topic, partitions=4)
        await log.start()
        env = {
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PROFILES_EVENTS_TOPIC": topic,
            "PROFILES_READ_SCHEMA": SCHEMA,
        }
        try:
            yield Stage(pool, log, env)
        finally:
            await log.stop()
            await pool.close()


def stream() -> list[Event]:
    """10 events per profile, interleaved across profiles; the last sets n=9."""
    pids = [uuid.uuid4() for _ in range(PROFILES)]
    events: list[Event] = []
    for step in range(PER_PROFILE):
        for pid in pids:
            if step == 0:
                events.append(imported(pid, 0, phones=("+4711", "+4722"), fields={"n": 0}))
            else:
                events.append(updated(pid, step, set={"n": step}))
    return events


async def publish(log: KafkaLog, events: list[Event], chunk: int = 250) -> None:
    for start in range(0, len(events), chunk):
        await log.append(events[start : start + chunk])
        await asyncio.sleep(0.02)  # a stream, not one burst: kills land mid-stream


async def assert_exactly_once(pool: asyncpg.Pool) -> None:
    """Every event applied once: versions count folds, so a double apply shows as 11."""
    assert await wait_for(pool, APPLIED, lambda n: n == TOTAL, 120) == TOTAL
    rows = await pool.fetch("SELECT version, phones, fields->>'n' AS n FROM profiles")
    assert len(rows) == PROFILES
    assert {tuple(r["phones"]) for r in rows} == {("+4711", "+4722")}
    assert {r["version"] for r in rows} == {PER_PROFILE}
    assert {r["n"] for r in rows} == {str(PER_PROFILE - 1)}  # per-profile order held
    assert await pool.fetchval("SELECT sum(next_offset) FROM checkpoints") == TOTAL
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 0


async def test_sigkill_mid_stream_then_restart_applies_every_event_once(
    stage: Stage, tmp_path: Path
) -> None:
    publishing = asyncio.create_task(publish(stage.log, stream()))
    first = start_profiles(["projector", "--batch-size", "200"], stage.env, tmp_path / "p1.log")
    try:
        at_kill = await wait_for(stage.pool, APPLIED, lambda n: n >= 1500, 90)
        # a bulk role: it gave the cores to readers (PROFILES_BACKGROUND_NICE)
        assert os.getpriority(os.PRIO_PROCESS, first.pid) == Settings().background_nice
        kill(first)
        assert 0 < at_kill < TOTAL, "the kill must land mid-stream"
        await publishing
        second = start_profiles(
            ["projector", "--batch-size", "200"], stage.env, tmp_path / "p2.log"
        )
        try:
            await assert_exactly_once(stage.pool)
        finally:
            assert terminate(second) == 0
    finally:
        if first.poll() is None:
            kill(first)
        publishing.cancel()


def assignments(path: Path, after: str = "") -> list[set[int]]:
    """Partition sets a projector process was assigned, in order, from its JSON log (only
    those logged after the first line holding `after`, if given)."""
    text = path.read_text()
    if after:
        text = text[text.index(after) :]
    return [
        {int(p) for p in json.loads(line)["checkpoints"]}
        for line in text.splitlines()
        if '"projector.assigned"' in line
    ]


async def test_two_projectors_split_partitions_and_survive_a_sigkill(
    stage: Stage, tmp_path: Path
) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = start_profiles(["projector", "--batch-size", "200"], stage.env, logs[0])
    b = start_profiles(["projector", "--batch-size", "200"], stage.env, logs[1])
    publishing = None
    try:
        for _ in range(300):  # both members hold partitions: the group has rebalanced
            if all(assignments(p) and assignments(p)[-1] for p in logs):
                break
            await asyncio.sleep(0.1)
        split = [assignments(p)[-1] for p in logs]
        assert split[0] | split[1] == {0, 1, 2, 3}
        assert not split[0] & split[1]
        publishing = asyncio.create_task(publish(stage.log, stream()))
        at_kill = await wait_for(stage.pool, APPLIED, lambda n: n >= 1500, 90)
        kill(a)
        assert 0 < at_kill < TOTAL
        await publishing
        await assert_exactly_once(stage.pool)
        assert assignments(logs[1])[-1] == {0, 1, 2, 3}, "the survivor took every partition"
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                terminate(proc)
        if publishing is not None:
            publishing.cancel()


def _tail(path: Path, lines: int = 40) -> str:
    """The end of a process's log, for an assertion's message (this test has failed once in
    many runs, with no log to say why)."""
    return "\n--- log tail ---\n" + "\n".join(path.read_text().splitlines()[-lines:])


def started_pids(path: Path) -> list[int]:
    """Child pids the `--workers` supervisor started, in order, from its JSON log."""
    return [
        json.loads(line)["pid"]
        for line in path.read_text().splitlines()
        if '"workers.started"' in line
    ]


async def test_workers_option_runs_a_group_and_restarts_a_killed_member(
    stage: Stage, tmp_path: Path
) -> None:
    """`profiles projector --workers 2`: two members, a SIGKILLed one is replaced, nothing lost."""
    path = tmp_path / "workers.log"
    supervisor = start_profiles(
        ["projector", "--workers", "2", "--batch-size", "200"], stage.env, path
    )
    publishing = None
    try:
        for _ in range(300):  # both members hold partitions: the group has rebalanced
            if len(started_pids(path)) == 2 and len(assignments(path)) >= 2:
                break
            await asyncio.sleep(0.1)
        first_two = started_pids(path)
        assert len(first_two) == 2, _tail(path)
        publishing = asyncio.create_task(publish(stage.log, stream()))
        at_kill = await wait_for(stage.pool, APPLIED, lambda n: n >= 1500, 90)
        os.kill(first_two[0], signal.SIGKILL)
        assert 0 < at_kill < TOTAL, (at_kill, _tail(path))
        await publishing
        await assert_exactly_once(stage.pool)
        for _ in range(100):
            if len(started_pids(path)) == 3:
                break
            await asyncio.sleep(0.1)
        assert '"workers.restart"' in path.read_text(), _tail(path)
        assert len(started_pids(path)) == 3, f"the killed member was not started again{_tail(path)}"
    finally:
        assert terminate(supervisor) == 0, _tail(path)
        if publishing is not None:
            publishing.cancel()
    for pid in started_pids(path):  # SIGTERM reached every member, none is left running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_restarted_member_takes_its_partitions_back_at_once(
    stage: Stage, tmp_path: Path
) -> None:
    """`--workers` members are static group members (KIP-345): the replacement of a SIGKILLed
    member rejoins under its name and resumes its partitions, the other member undisturbed.
    Dynamic members made the group wait for the dead member's session (10 s) to expire, every
    partition revoked: the backlog took 12.7-13.3 s after the kill, the group still for 8.7."""
    events = stream()
    for start in range(0, TOTAL, 2000):  # a backlog: the members are behind when one dies
        await stage.log.append(events[start : start + 2000])
    path = tmp_path / "workers.log"
    supervisor = start_profiles(
        ["projector", "--workers", "2", "--batch-size", "100", "--max-batch", "100"],
        stage.env,
        path,
    )
    try:
        for _ in range(300):  # the group settled: the last two assignments split the four
            held = assignments(path)[-2:]
            if len(held) == 2 and held[0] | held[1] == {0, 1, 2, 3} and not held[0] & held[1]:
                break
            await asyncio.sleep(0.05)
        at_kill = await wait_for(stage.pool, APPLIED, lambda n: n >= 1000, 90)
        killed = time.monotonic()
        os.kill(started_pids(path)[0], signal.SIGKILL)
        assert at_kill < TOTAL - 2000, f"the kill must leave a backlog{_tail(path)}"
        await assert_exactly_once(stage.pool)
        took = time.monotonic() - killed
        assert took < 6, f"the rest took {took:.1f} s after the kill{_tail(path)}"
        replacement = assignments(path, after='"workers.restart"')
        # after the restart only the replacement was assigned (its partitions, maybe sought
        # again): the survivor was never reassigned, as a rebalance would have done
        assert replacement, _tail(path)
        assert all(p == replacement[0] for p in replacement), _tail(path)
        assert 0 < len(replacement[0]) < 4, _tail(path)
    finally:
        assert terminate(supervisor) == 0, _tail(path)
    # stopped cleanly, static members leave at once: no partition waits out their session
    (group,) = {  # one store, one group (`read_models.<store id>`)
        json.loads(line)["group"]
        for line in path.read_text().splitlines()
        if '"projector.started"' in line
    }
    members = await group_members(stage.env["KAFKA_BOOTSTRAP_SERVERS"], group)
    topic = stage.env["PROFILES_EVENTS_TOPIC"]  # a static name ends with its topic
    assert [m for m in members if topic in m] == [], _tail(path)
