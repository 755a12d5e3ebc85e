"""Database structure events (R1-R3): a database was created, a custom field added or removed.

`subject` of these events is `database_subject(database_id)`: a stable UUID naming the database,
so all of one database's structure events share a key and stay in order.
"""

from __future__ import annotations

import uuid
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import EnvelopeBase

FieldTypeName = Literal["number", "float", "line", "date", "boolean", "enum", "ip", "tags"]

_NAMESPACE = uuid.UUID("6f1c2f0e-8a39-4c55-9d8e-3f6b1f2a7c10")


def database_subject(database_id: str) -> UUID:
    """The key of a database's structure events: UUIDv5 of its id in our namespace."""
    return uuid.uuid5(_NAMESPACE, database_id)


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseCreatedData(_Data):
    """A database of profiles now exists."""

    name: str = Field(min_length=1, max_length=200)


class FieldAddedData(_Data):
    """A custom field joined the database structure (R3 types)."""

    name: str
    field_type: FieldTypeName
    options: tuple[str, ...] = Field(default=(), description="Enum options, in order.")
    unique: bool = Field(default=False, description="The field identifies profiles (R6).")


class FieldRemovedData(_Data):
    """A custom field left the structure; its values disappear from reads (R1)."""

    name: str


class DatabaseCreated(EnvelopeBase):
    """`database.created`, current version."""

    type: Literal["database.created"] = "database.created"
    schema_version: Literal[1] = 1
    data: DatabaseCreatedData


class FieldAdded(EnvelopeBase):
    """`database.field_added`, current version."""

    type: Literal["database.field_added"] = "database.field_added"
    schema_version: Literal[1] = 1
    data: FieldAddedData


class FieldRemoved(EnvelopeBase):
    """`database.field_removed`, current version."""

    type: Literal["database.field_removed"] = "database.field_removed"
    schema_version: Literal[1] = 1
    data: FieldRemovedData
