"""A Kafka broker restart under the projector and the outbox: nothing lost, nothing twice.

The test starts a broker of its own (Kafka jars from Maven Central, Java 17+) so that stopping
it leaves the session's broker alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from projections.migrate import migrate
from services.eventlog.kafka import KafkaLog
from services.local import start_kafka, stop_kafka
from services.runtime import create_pool
from tests.api import serve
from tests.conftest import JAR_CACHE, started_or_unavailable
from tests.integration.procs import start_profiles, terminate, wait_for
from tests.integration.test_projector_crash import (
    APPLIED,
    TOTAL,
    assert_exactly_once,
    publish,
    stream,
)
from tests.pg import fresh_database

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

SCHEMA = "read_models"


@dataclass
class OwnBroker:
    """A Kafka broker this test alone uses, to stop and start again on the same port."""

    data_dir: Path
    bootstrap: str

    async def stop(self) -> None:
        await asyncio.to_thread(stop_kafka, self.data_dir)

    async def start(self) -> None:
        port = int(self.bootstrap.rsplit(":", 1)[1])
        await asyncio.to_thread(start_kafka, self.data_dir, JAR_CACHE, port)


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[OwnBroker]:
    data_dir = tmp_path / "kafka"
    bootstrap = await started_or_unavailable("Kafka", lambda: start_kafka(data_dir, JAR_CACHE))
    try:
        yield OwnBroker(data_dir, bootstrap)
    finally:
        await asyncio.to_thread(stop_kafka, data_dir)


async def test_projector_process_rides_out_a_broker_restart(
    own_broker: OwnBroker, database_url: str, tmp_path: Path
) -> None:
    """`profiles projector`: half of 10,000 events published, the broker stopped once 1,500
    are applied and started again 2 s later, the other half published then. The process
    stays up and every event is applied exactly once, in per-profile order."""
    topic = f"restart.{uuid.uuid4().hex}"
    events = stream()
    half = len(events) // 2  # the stream goes step by step: each half keeps each profile's order
    async with fresh_database(database_url) as url:
        pool = await create_pool(url, SCHEMA)
        async with pool.acquire() as conn:
            await migrate(conn, SCHEMA)
        env = {
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap,
            "PROFILES_EVENTS_TOPIC": topic,
            "PROFILES_READ_SCHEMA": SCHEMA,
        }
        log = KafkaLog(own_broker.bootstrap, topic=topic, partitions=4)
        await log.start()
        path = tmp_path / "projector.log"
        projector = start_profiles(["projector", "--batch-size", "200"], env, path)
        try:
            await publish(log, events[:half])
            await log.stop()
            at_stop = await wait_for(pool, APPLIED, lambda n: n >= 1500, 90)
            assert 0 < at_stop < TOTAL
            await own_broker.stop()
            await asyncio.sleep(2)
            assert projector.poll() is None, "the projector died with the broker"
            await own_broker.start()
            log = KafkaLog(own_broker.bootstrap, topic=topic, partitions=4)
            await log.start()
            await publish(log, events[half:])
            await assert_exactly_once(pool)
            assert projector.poll() is None
        finally:
            assert terminate(projector) == 0, path.read_text()[-3000:]
            await log.stop()
            await pool.close()


async def test_a_write_while_the_broker_is_away_answers_and_lands_once_it_is_back(
    own_broker: OwnBroker, database_url: str, tmp_path: Path
) -> None:
    """`profiles serve` on Kafka: with the broker stopped, a profile import still answers 201
    within the publish wait (its event is committed to the outbox), with a token. A read with
    that token, while the broker is away, says the projection is behind (404 with `Consistency:
    behind`); once the broker is back the outbox publishes the event and the same read finds
    the profile, folded once."""
    async with (
        fresh_database(database_url) as url,
        serve(
            url,
            tmp_path / "data",
            kafka=own_broker.bootstrap,
            publish_wait=2.0,
            consistency_wait=2.0,
        ) as api,
    ):
        database = await api.database()
        path = f"/v1/databases/{database}/profiles"
        ready = await api.client.get("/readyz")
        assert (ready.status_code, ready.json()["log"]) == (200, "ok")
        assert ready.json()["behind"] >= 0
        await own_broker.stop()
        still = await api.client.get("/readyz")  # PostgreSQL answers: the API can serve
        assert still.status_code == 200
        assert still.json()["log"].startswith("unavailable")
        assert still.json()["behind"] is None
        began = time.monotonic()
        written = await api.client.post(path, json={"email": "away@example.com"})
        assert written.status_code == 201, written.text
        assert time.monotonic() - began < 10, "the write waited for the broker"
        profile, token = written.json()["profile_id"], written.json()["consistency_token"]
        began = time.monotonic()  # one write paid for the outage: the next ones do not wait
        more = [
            await api.client.post(path, json={"email": f"away{n}@example.com"}) for n in range(5)
        ]
        assert [r.status_code for r in more] == [201] * 5
        assert time.monotonic() - began < 1.5, "a write after the first waited for the broker"
        behind = await api.client.get(
            f"/v1/profiles/{profile}", headers={"Consistency-Token": token}
        )
        assert behind.status_code == 404
        assert behind.headers["consistency"] == "behind"
        await own_broker.start()
        deadline = time.monotonic() + 60
        while True:
            found = await api.client.get(
                f"/v1/profiles/{profile}", headers={"Consistency-Token": token}
            )
            if found.status_code == 200 or time.monotonic() > deadline:
                break
        assert found.status_code == 200, found.text
        assert "consistency" not in found.headers
        assert found.json()["email"] == "away@example.com"
        rows = await api.fetch(
            "SELECT version FROM read_models.profiles WHERE profile_id = $1", uuid.UUID(profile)
        )
        assert [r["version"] for r in rows] == [1]
        last = more[-1].json()
        after = await api.read(f"/v1/profiles/{last['profile_id']}", last["consistency_token"])
        assert after.json()["email"] == "away4@example.com"
