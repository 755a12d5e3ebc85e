"""Where each partition of a topic ends, for `/readyz` and `/metrics` (`KafkaLog.ends`).

A probe or a scrape comes every few seconds for as long as the process lives. Opening an admin
client and a consumer for each one (as before) cost two connections, two metadata round trips
and the broker's log lines every time; one consumer is kept instead, and the partitions are
described again only once a minute (a topic gains partitions rarely, by hand).
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

DESCRIBE_EVERY_S = 60.0


class EndsProbe:
    """One long-lived consumer that only asks for end offsets (it joins no group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._described_at: float | None = None
        self._lock = asyncio.Lock()  # one probe at a time: they share the consumer

    async def ends(self) -> dict[int, int]:
        """Partition -> the offset the next record will take. On any failure (the broker away,
        the caller's timeout) the clients are closed and the next call opens them again, so a
        probe never reuses a consumer left half-way."""
        async with self._lock:
            try:
                if self._consumer is None:
                    consumer = AIOKafkaConsumer(
                        bootstrap_servers=self._bootstrap, enable_auto_commit=False
                    )
                    self._consumer = consumer  # before start: a failed start is closed too
                    await consumer.start()
                now = time.monotonic()
                if self._described_at is None or now - self._described_at > DESCRIBE_EVERY_S:
                    self._partitions = await self._describe()
                    self._described_at = now
                offsets = await self._consumer.end_offsets(self._partitions)
            except BaseException:
                await self._close()
                raise
        return {tp.partition: offset for tp, offset in offsets.items()}

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    @property
    def open(self) -> bool:
        return self._consumer is not None

    async def _describe(self) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        try:
            await admin.start()
            (described,) = await admin.describe_topics([self._topic])
        finally:
            await admin.close()
        return [TopicPartition(self._topic, p["partition"]) for p in described["partitions"]]

    async def _close(self) -> None:
        consumer, self._consumer, self._described_at = self._consumer, None, None
        if consumer is not None:
            await consumer.stop()
