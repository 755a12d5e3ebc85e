"""Events already encoded for the log, and `profile.imported` encoded without building a model.

A file import appends hundreds of thousands of `profile.imported` events whose every value was
checked by stricter domain rules; building a pydantic model for each only to serialise it again
cost a fifth of the import's time. `tests/contract/test_encoded.py` proves the bytes decode to
the same event the model would have been.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pydantic import JsonValue
from pydantic_core import to_json

from contracts.envelope import CONTENT_TYPE, SPECVERSION

# Kafka refuses a record over its `max.message.bytes` (1 MiB unless an operator raised it) and
# the producer one over `max.request.size` (1 MiB): a larger event could never be published,
# and, committed to the outbox first, would block every write queued behind it. Both logs
# refuse one over this, the key, headers and batch framing left room.
MAX_EVENT_BYTES = 1_000_000


class EventTooLargeError(ValueError):
    """An event whose bytes exceed MAX_EVENT_BYTES; the message names its type and size only."""

    def __init__(self, event_type: str, size: int) -> None:
        super().__init__(
            f"a {event_type} event of {size:,} bytes exceeds the log's limit of "
            f"{MAX_EVENT_BYTES:,} bytes"
        )
        self.size = size


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event as the log stores it: its bytes, plus what routing needs without parsing them."""

    id: UUID
    subject: UUID
    type: str
    schema_version: int
    value: bytes

    def headers(self) -> list[tuple[str, bytes]]:
        """CloudEvents binary-mode hints; never personal data."""
        return ce_headers(self.id, self.type, self.schema_version)


def ce_headers(event_id: UUID, event_type: str, schema_version: int) -> list[tuple[str, bytes]]:
    """The CloudEvents binary-mode headers of an event: routing without parsing the value."""
    return [
        _SPECVERSION_HEADER,
        ("ce_id", str(event_id).encode()),
        _type_header(event_type),
        _version_header(schema_version),
    ]


# the same few header values for every event of a type: built once, not per event
_SPECVERSION_HEADER = ("ce_specversion", SPECVERSION.encode())


@functools.cache
def _type_header(event_type: str) -> tuple[str, bytes]:
    return ("ce_type", event_type.encode())


@functools.cache
def _version_header(version: int) -> tuple[str, bytes]:
    return ("ce_dataversion", str(version).encode())


def event(
    *,
    type: str,
    schema_version: int,
    id: UUID,
    source: str,
    time: datetime,
    subject: UUID,
    database_id: str,
    data: Mapping[str, object],
) -> EncodedEvent:
    """Any event from envelope values and `data` already checked against its type's data model.

    The caller vouches for the values; `tests/contract/test_encoded.py` shows the bytes decode
    to the event the model would have built.
    """
    document = {
        "specversion": SPECVERSION,
        "id": id,
        "source": source,
        "type": type,
        "schema_version": schema_version,
        "time": time,
        "subject": subject,
        "database_id": database_id,
        "datacontenttype": CONTENT_TYPE,
        "data": data,
    }
    return EncodedEvent(id, subject, type, schema_version, to_json(document))


def profile_imported(
    *,
    id: UUID,
    source: str,
    time: datetime,
    subject: UUID,
    database_id: str,
    import_mode: str,
    created: bool,
    email: str | None,
    phones: Sequence[str],
    fields: Mapping[str, JsonValue],
    custom: Mapping[str, JsonValue],
    status: str | None,
    located: Mapping[str, JsonValue],
) -> EncodedEvent:
    """`profile.imported` v1 from values the caller has already checked."""
    return event(
        type="profile.imported",
        schema_version=1,
        id=id,
        source=source,
        time=time,
        subject=subject,
        database_id=database_id,
        data={
            "import_mode": import_mode,
            "created": created,
            "email": email,
            "phones": phones,
            "fields": fields,
            "custom": custom,
            "status": status,
            "located": located,
        },
    )
