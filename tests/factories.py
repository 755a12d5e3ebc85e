"""Event builders for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from contracts import ProfileImported, ProfileImportedData, ProfileUpdated, ProfileUpdatedData

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def imported(subject: UUID, seconds: int = 0, **data: Any) -> ProfileImported:
    data.setdefault("import_mode", "api")
    data.setdefault("created", True)
    return ProfileImported(
        id=uuid.uuid4(),
        source="/tests",
        time=T0 + timedelta(seconds=seconds),
        subject=subject,
        database_id="db1",
        data=ProfileImportedData(**data),
    )


def updated(subject: UUID, seconds: int = 0, **data: Any) -> ProfileUpdated:
    return ProfileUpdated(
        id=uuid.uuid4(),
        source="/tests",
        time=T0 + timedelta(seconds=seconds),
        subject=subject,
        database_id="db1",
        data=ProfileUpdatedData(**data),
    )
