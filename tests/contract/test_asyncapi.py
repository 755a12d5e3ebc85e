"""The AsyncAPI document is generated from the contracts, so it cannot drift from them."""

from __future__ import annotations

from contracts import CANONICAL_TOPIC
from contracts.codec import EVENT_CLASSES
from services.asyncapi import document


def test_asyncapi_describes_the_canonical_topic_and_every_event_type() -> None:
    doc = document()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert CANONICAL_TOPIC in addresses
    schemas = doc["components"]["schemas"]
    for cls in EVENT_CLASSES:
        event_type = cls.model_fields["type"].default
        assert schemas[cls.__name__]["properties"]["type"]["const"] == event_type
