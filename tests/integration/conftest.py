"""One running service shared by the API tests of a session (each test uses its own database)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.eventlog.kafka import KafkaLog
from services.eventlog.port import EventLog
from services.eventlog.postgres import PostgresLog
from tests.api import Api, serve
from tests.geodb import build_city_db
from tests.pg import fresh_database


@pytest.fixture(scope="session")
async def api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    folder = tmp_path_factory.mktemp("api")
    geoip = folder / "City-Test.mmdb"
    build_city_db(geoip)
    async with fresh_database(database_url) as url, serve(url, folder / "data", geoip) as running:
        yield running


@pytest.fixture(scope="session")
async def kafka_api(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    """The same service on the Kafka log (its own topic): writes go through the outbox."""
    folder = tmp_path_factory.mktemp("kafka_api")
    async with (
        fresh_database(database_url) as url,
        serve(url, folder / "data", kafka=kafka_bootstrap) as running,
    ):
        yield running


@pytest.fixture(params=["postgres", pytest.param("kafka", marks=pytest.mark.kafka)])
async def log(request: pytest.FixtureRequest, pool: asyncpg.Pool) -> AsyncIterator[EventLog]:
    """Each log in turn, on the test module's `pool`: PostgreSQL, then a fresh Kafka topic of
    one partition (the whole log has one order to check)."""
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        log: EventLog = KafkaLog(bootstrap, topic=f"test.{uuid.uuid4().hex}", partitions=1)
    else:
        log = PostgresLog(pool)
    await log.start()
    yield log
    await log.stop()
