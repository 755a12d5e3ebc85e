"""The AsyncAPI document names the three topics of API.md, each with its message, and describes
the dead letters as the intake processor really writes them."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from pydantic import ValidationError
from structlog.testing import capture_logs

from contracts import CANONICAL_TOPIC, INTAKE_DLQ_TOPIC, INTAKE_TOPIC
from contracts.encoded import ce_headers
from contracts.intake import PublicEvent
from contracts.topics import dead_letter_topic
from domain.errors import Violation
from services import intake_processor
from services.asyncapi import document as asyncapi_document
from services.http_api import create_app
from services.settings import Settings
from tests.documents import refs


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def _resolve(document: dict[str, Any], ref: str) -> Any:
    found: Any = document
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def _messages(document: dict[str, Any], address: str) -> list[dict[str, Any]]:
    return [
        _resolve(document, ref["$ref"])
        for channel in document["channels"].values()
        if channel["address"] == address
        for ref in channel["messages"].values()
    ]


def test_the_three_topics_of_the_api_each_have_a_message_schema(document: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {INTAKE_TOPIC, INTAKE_DLQ_TOPIC, CANONICAL_TOPIC}
    for address in addresses:
        messages = _messages(document, address)
        assert messages, address
        assert all(message["payload"] for message in messages), address


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for ref in refs(document):
        assert _resolve(document, ref) is not None, ref


def test_intake_messages_are_public_events(document: dict[str, Any]) -> None:
    (message,) = _messages(document, INTAKE_TOPIC)
    assert message["payload"] == {"$ref": "#/components/schemas/PublicEvent"}
    schema = document["components"]["schemas"]["PublicEvent"]
    assert set(schema["properties"]) == set(PublicEvent.model_fields)


def test_dead_letters_carry_the_intake_bytes_which_may_be_no_event(
    document: dict[str, Any],
) -> None:
    (message,) = _messages(document, INTAKE_DLQ_TOPIC)
    kinds = message["payload"]["anyOf"]
    assert {"$ref": "#/components/schemas/PublicEvent"} in kinds
    assert any("$ref" not in kind and "type" not in kind for kind in kinds)  # any bytes


def test_dead_letter_headers_are_the_ones_the_intake_processor_writes(
    document: dict[str, Any],
) -> None:
    (message,) = _messages(document, INTAKE_DLQ_TOPIC)
    headers = _resolve(document, message["headers"]["$ref"])
    record = SimpleNamespace(
        topic=INTAKE_TOPIC, partition=3, offset=41, headers=[("trace", b"t"), ("dlq_reason", b"x")]
    )
    written = dict(intake_processor._headers(record, "rejected: profile: profile_not_found"))
    assert set(headers["required"]) == {name for name in written if name.startswith("dlq_")}
    assert set(headers["properties"]) == set(headers["required"])
    assert headers["additionalProperties"] is True  # the publisher's own headers stay
    assert written["trace"] == b"t"
    for name in ("dlq_source_partition", "dlq_source_offset"):
        assert headers["properties"][name]["pattern"] == "^[0-9]+$"
        assert written[name].decode().isdigit()


def test_the_documented_reasons_are_the_ones_the_intake_processor_gives(
    document: dict[str, Any],
) -> None:
    (message,) = _messages(document, INTAKE_DLQ_TOPIC)
    said = _resolve(document, message["headers"]["$ref"])["properties"]["dlq_reason"]
    with pytest.raises(ValidationError) as invalid:
        PublicEvent.model_validate_json(b"{}")
    reasons = (
        intake_processor._invalid(invalid.value),
        intake_processor._rejected([Violation("profile", "profile_not_found", None)]),
    )
    for reason in reasons:
        prefix = reason.split(": ", 1)[0]
        assert f"`{prefix}: " in said["description"], reason


class _Producer:
    """Takes records of at most `limit` bytes, as a broker with that `max.message.bytes`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: list[tuple[bytes, dict[str, bytes]]] = []

    async def send(
        self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        if len(value) > self.limit:
            raise MessageSizeTooLargeError
        self.sent.append((value, dict(headers)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_a_dead_letter_too_large_for_its_bytes_is_documented_as_it_goes(
    document: dict[str, Any],
) -> None:
    (message,) = _messages(document, INTAKE_DLQ_TOPIC)
    said = _resolve(document, message["headers"]["$ref"])["properties"]["dlq_reason"]
    processor = intake_processor.IntakeProcessor(cast(Any, None), cast(Any, None), None, "")
    producer = _Producer(limit=10)
    record = SimpleNamespace(
        topic=INTAKE_TOPIC, partition=0, offset=7, key=b"k", value=b"x" * 11, headers=[]
    )
    with capture_logs():
        await processor._bury(producer, [(record, "rejected: profile: profile_not_found")])
    ((value, headers),) = producer.sent
    assert value == b""
    assert "(payload left out: " in headers["dlq_reason"].decode()
    assert "`(payload left out: …)`" in said["description"]
    assert "none when they did not fit" in message["payload"]["description"]


def test_canonical_records_are_documented_with_their_key_and_headers_and_no_correlation(
    document: dict[str, Any],
) -> None:
    """The key analytics consumers partition by, the `ce_*` headers every canonical record
    carries (`contracts.encoded.ce_headers`), and no `correlationId`: FastStream pointed it at
    a `correlation_id` header that no record of these topics has."""
    made = [name for name, _ in ce_headers(uuid.uuid4(), "campaign.opened", 1)]
    for message in _messages(document, CANONICAL_TOPIC):
        assert message["bindings"]["kafka"]["key"]["format"] == "uuid"
        headers = _resolve(document, message["headers"]["$ref"])
        assert sorted(headers["properties"]) == sorted(made)
    for message in document["components"]["messages"].values():
        assert "correlationId" not in message
        assert "key" in message["bindings"]["kafka"]


async def test_the_document_names_the_topics_the_deployment_uses() -> None:
    """`PROFILES_EVENTS_TOPIC` and `PROFILES_INTAKE_TOPIC` as the service runs with them: the
    document of a deployment on other topics named API.md's defaults before."""
    assert dead_letter_topic(INTAKE_TOPIC) == INTAKE_DLQ_TOPIC
    app = create_app(Settings(events_topic="acme.events", intake_topic="acme.intake"))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        served = (await client.get("/asyncapi.json")).json()
    addresses = sorted({c["address"] for c in served["channels"].values()})
    assert addresses == ["acme.events", "acme.intake", "acme.intake.dlq"]
