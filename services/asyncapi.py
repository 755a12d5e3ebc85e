"""The AsyncAPI document of our topics, generated from the contracts through FastStream.

Three topics (API.md): the intake upstream services publish to, its dead letters, and the
canonical log. FastStream describes payloads only, so the dead letters' headers and their
"any bytes" payload are added to its document afterwards (`_dead_letters`).
"""

from __future__ import annotations

import json
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, ConfigDict, Field

from contracts import CANONICAL_TOPIC, INTAKE_TOPIC, Event
from contracts.intake import PublicEvent
from contracts.topics import dead_letter_topic

DLQ_CHANNEL = "intake-dead-letters"
_SCHEMAS = "#/components/schemas/"


class DeadLetterHeaders(BaseModel):
    """Kafka headers of a dead letter (UTF-8 text): the intake message's own headers, kept,
    except any named `dlq_*`, which these replace (services/intake_processor.py `_headers`)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    dlq_reason: str = Field(
        description="Why: `invalid event: <location>: <error type>; …` when the bytes are no "
        "PublicEvent, `rejected: <field>: <rule>; …` when the intake refused the event; at "
        "most 10 parts; names fields and rules, never values (they may be personal data). "
        "Ends `(payload left out: …)` when the bytes did not fit a dead letter."
    )
    dlq_source_topic: str = Field(description="The topic the message was read from.")
    dlq_source_partition: str = Field(pattern=r"^[0-9]+$", description="Its partition.")
    dlq_source_offset: str = Field(pattern=r"^[0-9]+$", description="Its offset there.")


class CanonicalHeaders(BaseModel):
    """Kafka headers of a canonical record (UTF-8 text; `contracts.encoded.ce_headers`):
    CloudEvents binary-mode hints, to route without parsing the value; never personal data."""

    model_config = ConfigDict(frozen=True)

    ce_specversion: str = Field(description="CloudEvents version: `1.0`.")
    ce_id: str = Field(description="The event's id (a UUID), as `id` in the value.")
    ce_type: str = Field(description="The event's type, as `type` in the value.")
    ce_dataversion: str = Field(
        pattern=r"^[0-9]+$", description="The version of `data`, as `schema_version`."
    )


_KEYS = {
    "canonical": {
        "type": "string",
        "format": "uuid",
        "description": "The profile id (the event's `subject`): a profile's events share a "
        "partition, in order.",
    },
    "intake": {
        "type": "string",
        "description": "The publisher's choice; `services.publisher.partition_key` keys by the "
        "profile reference, so one profile's events keep their order.",
    },
}


def _broker(events_topic: str, intake_topic: str) -> KafkaBroker:
    # Declaration only: this broker is never connected; it exists to describe the topics.
    broker = KafkaBroker()

    @broker.subscriber(
        intake_topic,
        title="intake",
        description="Upstream services publish public events (any public type; the profile "
        "named by any identifier); the intake processor validates, resolves, locates and "
        "appends them to the canonical log. Key: the publisher's choice.",
    )
    async def intake(event: PublicEvent) -> None:
        """Consumed by the intake processor (`profiles intake`)."""

    broker.publisher(
        dead_letter_topic(intake_topic),
        title=DLQ_CHANNEL,
        description="What the intake processor could not accept: the intake message's key and "
        "bytes unchanged, and why in its headers.",
        schema=PublicEvent,  # replaced by `_dead_letters`; keeps PublicEvent in the schemas
    )

    @broker.subscriber(
        events_topic,
        title="projector",
        description="Projectors and analytics consumers read the canonical log, keyed by profile.",
    )
    @broker.publisher(
        events_topic,
        title="canonical-log",
        description="Every accepted event, once; key = profile id (`subject`), JSON CloudEvent.",
        schema=Event,
    )
    async def canonical(event: Event) -> None:
        """Consumed by projectors and analytics."""

    return broker


def _dead_letters(document: dict[str, Any]) -> None:
    """Describe the dead letters as the intake processor writes them: its headers, and the
    intake message's bytes, which are a PublicEvent only when they parsed (`rejected: …`)."""
    schemas = document["components"]["schemas"]
    schemas[DeadLetterHeaders.__name__] = DeadLetterHeaders.model_json_schema()
    for ref in document["channels"][DLQ_CHANNEL]["messages"].values():
        message = document["components"]["messages"][ref["$ref"].rsplit("/", 1)[-1]]
        message["headers"] = {"$ref": _SCHEMAS + DeadLetterHeaders.__name__}
        message["payload"] = {
            "description": "The intake message's bytes, unchanged; none when they did not fit "
            "a dead letter (`dlq_reason` says so; `dlq_source_*` name where the original is).",
            "anyOf": [
                {"$ref": _SCHEMAS + PublicEvent.__name__},
                {"description": "Bytes that are no PublicEvent (`dlq_reason`: `invalid event`)."},
            ],
        }


def _records(document: dict[str, Any]) -> None:
    """What FastStream leaves out of every message: the record key and the canonical records'
    headers. And what it adds wrongly: a `correlationId` read from a `correlation_id` header
    no record of these topics carries."""
    schemas = document["components"]["schemas"]
    schemas[CanonicalHeaders.__name__] = CanonicalHeaders.model_json_schema()
    for name, message in document["components"]["messages"].items():
        message.pop("correlationId", None)
        canonical = name.split(":")[0] in {"projector", "canonical-log"}
        key = _KEYS["canonical" if canonical else "intake"]
        message["bindings"] = {"kafka": {"key": key, "bindingVersion": "0.5.0"}}
        if canonical:
            message["headers"] = {"$ref": _SCHEMAS + CanonicalHeaders.__name__}


def document(
    events_topic: str = CANONICAL_TOPIC, intake_topic: str = INTAKE_TOPIC
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document as JSON-able data, with the topics a deployment really uses
    (`PROFILES_EVENTS_TOPIC`, `PROFILES_INTAKE_TOPIC`; API.md's names by default)."""
    spec = AsyncAPI(
        _broker(events_topic, intake_topic),
        title="Subscriber Profiles events",
        version="1",
        description="Topics and event contracts of Subscriber Profiles (see contracts/).",
    ).to_specification()
    result: dict[str, Any] = json.loads(spec.to_json())
    _dead_letters(result)
    _records(result)
    return result
