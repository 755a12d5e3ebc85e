"""The AsyncAPI document of our topics, generated from the contracts through FastStream."""

from __future__ import annotations

import json
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from contracts import CANONICAL_TOPIC, Event


def _broker() -> KafkaBroker:
    # Declaration only: this broker is never connected; it exists to describe the topics.
    broker = KafkaBroker()

    @broker.subscriber(
        CANONICAL_TOPIC,
        title="projector",
        description="Projectors and analytics consumers read the canonical log, keyed by profile.",
    )
    @broker.publisher(
        CANONICAL_TOPIC,
        title="canonical-log",
        description="Every accepted event, once; key = profile id (`subject`), JSON CloudEvent.",
        schema=Event,
    )
    async def canonical(event: Event) -> None:
        """Consumed by projectors and analytics."""

    return broker


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document as JSON-able data."""
    spec = AsyncAPI(
        _broker(),
        title="Subscriber Profiles events",
        version="1",
        description="Topics and event contracts of Subscriber Profiles (see contracts/).",
    ).to_specification()
    result: dict[str, Any] = json.loads(spec.to_json())
    return result
