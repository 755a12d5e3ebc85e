"""Event builders for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from contracts import (
    CampaignActionData,
    CampaignOpened,
    DatabaseCreated,
    DatabaseCreatedData,
    FieldAdded,
    FieldAddedData,
    FieldRemoved,
    FieldRemovedData,
    ProfileDeleted,
    ProfileImported,
    ProfileImportedData,
    ProfileStatusChanged,
    ProfileStatusChangedData,
    ProfileUpdated,
    ProfileUpdatedData,
    database_subject,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def envelope(subject: UUID, seconds: int, database_id: str = "db1") -> dict[str, Any]:
    """The envelope attributes every test event shares: a fresh id, T0 + `seconds`."""
    return {
        "id": uuid.uuid4(),
        "source": "/tests",
        "time": T0 + timedelta(seconds=seconds),
        "subject": subject,
        "database_id": database_id,
    }


def imported(subject: UUID, seconds: int = 0, **data: Any) -> ProfileImported:
    data.setdefault("import_mode", "api")
    data.setdefault("created", True)
    return ProfileImported(
        **envelope(subject, seconds),
        data=ProfileImportedData(**data),
    )


def updated(subject: UUID, seconds: int = 0, **data: Any) -> ProfileUpdated:
    return ProfileUpdated(
        **envelope(subject, seconds),
        data=ProfileUpdatedData(**data),
    )


def status_changed(subject: UUID, seconds: int, status: Any, cause: Any = "api") -> Any:
    return ProfileStatusChanged(
        **envelope(subject, seconds),
        data=ProfileStatusChangedData(status=status, cause=cause),
    )


def opened(subject: UUID, seconds: int = 0, ip: str = "81.2.69.142") -> CampaignOpened:
    """A campaign open from `ip`, located in London by the intake."""
    return CampaignOpened(
        **envelope(subject, seconds),
        data=CampaignActionData(campaign_id="c1", ip=ip, location={"city": "London"}),
    )


def deleted(subject: UUID, seconds: int = 0) -> ProfileDeleted:
    return ProfileDeleted(
        **envelope(subject, seconds),
    )


def database_event(kind: str, seconds: int = 0, database_id: str = "db1", **data: Any) -> Any:
    cls, data_cls = {
        "created": (DatabaseCreated, DatabaseCreatedData),
        "field_added": (FieldAdded, FieldAddedData),
        "field_removed": (FieldRemoved, FieldRemovedData),
    }[kind]
    return cls(
        **envelope(database_subject(database_id), seconds, database_id),
        data=data_cls(**data),
    )
