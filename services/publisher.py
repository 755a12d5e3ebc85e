"""A typed publisher of public events onto the intake topic, for upstream Python services.

Keys never carry personal data; the intake processor validates and resolves what arrives:

    from services.publisher import Publisher
    async with Publisher("kafka:9092") as publisher:
        await publisher.publish(event)  # a contracts.intake.PublicEvent
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.intake import ProfileRef, PublicEvent
from contracts.topics import INTAKE_TOPIC
from domain.errors import ValidationError
from domain.identity import normalise_email, normalise_phone
from services.eventlog.kafka import send_batched


class Publisher:
    """An idempotent producer (acks=all): a retried send is never written twice."""

    def __init__(self, bootstrap: str, topic: str = INTAKE_TOPIC) -> None:
        self.topic = topic
        self._producer: Any = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
        )

    async def __aenter__(self) -> Publisher:
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def publish(self, event: PublicEvent) -> None:
        """Send one event and wait until the broker has it."""
        await self._producer.send_and_wait(
            self.topic, event.model_dump_json().encode(), key=partition_key(event.profile)
        )

    async def publish_many(self, events: Sequence[PublicEvent]) -> None:
        """Send many events in record batches and wait until the broker has them all."""
        records = [
            (partition_key(e.profile), e.model_dump_json().encode(), list[tuple[str, bytes]]())
            for e in events
        ]
        await send_batched(self._producer, self.topic, records)


def partition_key(ref: ProfileRef) -> bytes:
    """The record key: the profile's identifier, or a SHA-256 of database + email/phone."""
    if ref.profile_id is not None:
        return str(ref.profile_id).encode()
    if ref.md5_id is not None:
        return ref.md5_id.lower().encode()
    if ref.xxh_id is not None:
        return ref.xxh_id.lower().encode()
    # hashed, so no personal data sits in the key; normalised, so one person keeps one partition
    kind, value = ("email", ref.email) if ref.email is not None else ("phone", ref.phone)
    with contextlib.suppress(ValidationError):  # the intake rejects it; any stable key will do
        value = normalise_email(str(value)) if kind == "email" else normalise_phone(str(value))
    claim = f"{ref.database_id}\x00{kind}\x00{value}"
    return hashlib.sha256(claim.encode()).hexdigest().encode()
