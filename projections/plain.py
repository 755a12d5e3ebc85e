"""Stored values as JSON-able ones, for personal data exports (R27)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


def plain(value: object) -> object:
    """UUIDs and timestamps as text; everything else as asyncpg gave it (jsonb already decoded)."""
    if isinstance(value, UUID):
        return str(value)
    return value.isoformat() if isinstance(value, datetime) else value


def row(record: asyncpg.Record) -> dict[str, object]:
    """A stored row as a JSON-able dict."""
    return {k: plain(v) for k, v in record.items()}
