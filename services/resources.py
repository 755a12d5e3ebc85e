"""Resources at ingest: the configuration subscriptions are checked against (R10, R13, R16, R17)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import asyncpg

from contracts import (
    ChannelFieldSpec,
    ResourceCreated,
    ResourceData,
    ResourceUpdated,
    resource_subject,
)
from domain.errors import ValidationError, Violation
from domain.fields import FieldDef
from domain.resources import Resource
from services.event_ids import new_id

SOURCE = "/v1/resources"


async def load(
    conn: asyncpg.Connection, resource_id: str, *, lock: bool = False
) -> Resource | None:
    """A resource's configuration, or None."""
    row = await conn.fetchrow(
        "SELECT resource_id, database_id, config FROM ingest.resources WHERE resource_id = $1"
        + (" FOR UPDATE" if lock else ""),
        resource_id,
    )
    return None if row is None else _resource(row["resource_id"], row["database_id"], row["config"])


async def create(conn: asyncpg.Connection, resource: Resource) -> ResourceCreated:
    """Record a new resource; ValidationError when its id is taken or its database unknown."""
    known = await conn.fetchval(
        "SELECT 1 FROM ingest.databases WHERE database_id = $1", resource.database_id
    )
    if known is None:
        raise ValidationError([Violation("database_id", "unknown_database", resource.database_id)])
    inserted = await conn.fetchval(
        "INSERT INTO ingest.resources (resource_id, database_id, config) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        resource.resource_id,
        resource.database_id,
        _config(resource),
    )
    if inserted is None:
        raise ValidationError([Violation("resource_id", "resource_exists", resource.resource_id)])
    return ResourceCreated(**_envelope(resource), data=data(resource))


async def update(conn: asyncpg.Connection, resource: Resource) -> ResourceUpdated:
    """Store a resource's new configuration (inside the transaction that loaded it locked)."""
    await conn.execute(
        "UPDATE ingest.resources SET config = $2 WHERE resource_id = $1",
        resource.resource_id,
        _config(resource),
    )
    return ResourceUpdated(**_envelope(resource), data=data(resource))


def data(resource: Resource) -> ResourceData:
    """The event data of a resource's configuration."""
    return ResourceData(
        resource_id=resource.resource_id,
        name=resource.name,
        channels=resource.channels,
        categories=resource.categories,
        custom_fields=tuple(
            ChannelFieldSpec(name=f.name, field_type=f.type, options=f.options)
            for f in resource.custom_fields.values()
        ),
        raise_priority=resource.raise_priority,
        opt_in=resource.opt_in,
    )


def _envelope(resource: Resource) -> dict[str, Any]:
    return {
        "id": new_id(),
        "source": SOURCE,
        "time": datetime.now(UTC),
        "subject": resource_subject(resource.resource_id),
        "database_id": resource.database_id,
    }


def _config(resource: Resource) -> dict[str, Any]:
    return data(resource).model_dump(mode="json", exclude={"resource_id"})


def _resource(resource_id: str, database_id: str, config: dict[str, Any]) -> Resource:
    fields = {
        f["name"]: FieldDef(f["name"], f["field_type"], tuple(f["options"]))
        for f in config["custom_fields"]
    }
    return Resource(
        resource_id=resource_id,
        database_id=database_id,
        name=config["name"],
        channels=tuple(config["channels"]),
        categories=tuple(config["categories"]),
        custom_fields=MappingProxyType(fields),
        raise_priority=config["raise_priority"],
        opt_in=config["opt_in"],
    )
