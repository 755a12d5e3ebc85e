"""The session's real servers answer: PostgreSQL 18 over asyncpg, Kafka round-trips records."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.local._net import free_port
from tests.integration.procs import REPO


@pytest.mark.postgres
async def test_postgres_is_version_18(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        version = await conn.fetchval("SELECT version()")
    finally:
        await conn.close()
    assert "PostgreSQL 18" in version


@pytest.mark.kafka
async def test_kafka_round_trips_three_records(kafka_bootstrap: str) -> None:
    topic = f"test.local-services.{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        sent = [f"record-{i}".encode() for i in range(3)]
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for value in sent:
                await producer.send_and_wait(topic, value, key=b"k")
        finally:
            await producer.stop()
        # No consumer group: the test reads its one partition from the start by assignment.
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            received: list[bytes] = []
            async with asyncio.timeout(30):
                while len(received) < len(sent):
                    batches = await consumer.getmany(partition, timeout_ms=1000)
                    received += [record.value for record in batches.get(partition, [])]
        finally:
            await consumer.stop()
        assert received == sent
    finally:
        await admin.delete_topics([topic])
        await admin.close()


def _services_up(
    env: dict[str, str], without: str = "--no-kafka"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "services"), "up", without],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_services_up_refuses_a_given_server_that_does_not_answer() -> None:
    """`eval "$(services env)"`, then `services down`, then `services up`: the stale URL was
    taken as given and nothing started, silently; now it is an error that says what to do."""
    stale = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    done = _services_up({"DATABASE_URL": stale})
    assert done.returncode == 1
    assert f"DATABASE_URL={stale} does not answer" in done.stderr
    assert "unset DATABASE_URL" in done.stderr


@pytest.mark.postgres
def test_services_up_uses_a_given_server_that_answers(database_url: str) -> None:
    done = _services_up({"DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    assert f"postgres: given by DATABASE_URL={database_url}, not starting one" in done.stdout


def test_a_given_kafka_address_without_a_port_means_9092() -> None:
    """A bootstrap address may leave out the port; it was checked on PostgreSQL's 5432."""
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 9092))
        listener.listen()
    except OSError:  # something already listens there, which answers just as well
        pass
    try:
        done = _services_up({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1"}, without="--no-postgres")
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr
    assert "kafka: given by KAFKA_BOOTSTRAP_SERVERS=127.0.0.1, not starting one" in done.stdout
