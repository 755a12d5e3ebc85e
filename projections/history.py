"""The history timeline read model (R18, R19): written set-based, read newest first by keyset."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from contracts import Event
from domain.history import Entry, entry
from projections import bulk, plain


@dataclass(frozen=True)
class Page:
    """Entries newest first, and the cursor of the next page (None at the end)."""

    entries: list[dict[str, Any]]
    cursor: str | None


async def project(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Timeline lines of a batch in one statement; a deleted profile's history goes, and so do
    the lines of other timelines about a relation with it (R26)."""
    lines = [e for e in map(entry, events) if e is not None]
    if lines:  # an Entry is a tuple in the columns' order: COPied as it is
        await bulk.insert(conn, "history", Entry._fields, lines)
    gone = [e.subject for e in events if e.type == "profile.deleted"]
    if gone:
        await conn.execute("DELETE FROM history WHERE profile_id = ANY($1::uuid[])", gone)
        # and the relation lines of other timelines that name it: they are its relations too
        await conn.execute(
            "DELETE FROM history WHERE kind = 'relation' "
            "AND (summary ->> 'other_profile_id')::uuid = ANY($1::uuid[])",
            gone,
        )


async def raw(conn: asyncpg.Connection, profile_id: UUID) -> list[dict[str, object]]:
    """The whole timeline of a profile, oldest first, for a personal data export (R27)."""
    rows = await conn.fetch(
        "SELECT seq, profile_id, event_id, at, kind, type, summary::jsonb AS summary "
        "FROM history WHERE profile_id = $1 ORDER BY at, seq",
        profile_id,
    )
    return [plain.row(r) for r in rows]


async def read(
    conn: asyncpg.Connection,
    profile_id: UUID,
    kinds: Sequence[str],
    since: datetime,
    until: datetime,
    limit: int,
    cursor: str | None,
) -> Page:
    """One page of the timeline between `since` and `until`, newest first (R19)."""
    after = _decode(cursor) if cursor else None
    rows = await conn.fetch(
        "SELECT seq, event_id, at, kind, type, summary::jsonb AS summary FROM history "
        "WHERE profile_id = $1 AND at >= $2 AND at < $3 "
        "AND (cardinality($4::text[]) = 0 OR kind = ANY($4::text[])) "
        "AND ($5::timestamptz IS NULL OR (at, seq) < ($5, $6)) "
        "ORDER BY at DESC, seq DESC LIMIT $7",
        profile_id,
        since,
        until,
        list(kinds),
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    entries = [
        {
            "event_id": str(r["event_id"]),
            "at": r["at"].isoformat(),
            "kind": r["kind"],
            "type": r["type"],
            "summary": r["summary"],
        }
        for r in rows
    ]
    last = rows[-1] if rows else None
    return Page(entries, _encode(last["at"], last["seq"]) if more and last else None)


def _encode(at: datetime, seq: int) -> str:
    raw = json.dumps([at.isoformat(), seq]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, int]:
    """The position a cursor names; ValueError when it is not one of ours."""
    try:
        at, seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), int(seq)
    except (binascii.Error, json.JSONDecodeError, TypeError, ValueError):
        raise ValueError("malformed cursor") from None
