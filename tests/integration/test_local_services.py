"""The session's real servers answer: PostgreSQL 18 over asyncpg, Kafka round-trips records."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


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
