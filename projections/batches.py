"""Applying one batch of log records to the read models: dedupe, dead letters, checkpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import asyncpg

from contracts import Event
from domain.identity import distinct
from projections import checkpoints, plain

Project = Callable[[asyncpg.Connection, Sequence[Event]], Awaitable[None]]


@dataclass(frozen=True)
class DeadLetter:
    """A record no projection could read, kept with the reason."""

    partition: int
    offset: int
    reason: str
    payload: bytes
    profiles: tuple[UUID, ...] = ()  # whom its bytes are about, as far as they tell (R26)


@dataclass(frozen=True)
class Batch:
    """Decoded events of one poll, the dead letters among them, and the checkpoint moves."""

    events: Sequence[Event]
    dead: Sequence[DeadLetter]
    moves: Mapping[int, tuple[int, int]]  # partition -> (expected next offset, new next offset)
    dedupe: bool = True  # False when the log holds each event id once (one row less per event)


async def apply_batch(
    conn: asyncpg.Connection, projection: str, topic: str, batch: Batch, project: Project
) -> int:
    """Apply a batch and advance its checkpoint atomically; return the events newly applied."""
    async with conn.transaction():
        await checkpoints.advance(conn, projection, topic, batch.moves)
        events = list(batch.events)
        if batch.dedupe:
            events = await _first_seen(conn, projection, events)
        if batch.dead:
            await _bury(conn, projection, topic, batch.dead)
        if events:
            await project(conn, events)
        return len(events)


async def prune(conn: asyncpg.Connection, projection: str, window: timedelta) -> int:
    """Forget dedupe rows older than `window`; return how many went.

    A duplicate is a retried publish and arrives within minutes of the first: ids older than
    the window only make the table and its index grow.
    """
    done = await conn.execute(
        "DELETE FROM applied_events WHERE projection = $1 AND applied_at < now() - $2::interval",
        projection,
        window,
    )
    return int(done.split()[-1])


async def _first_seen(
    conn: asyncpg.Connection, projection: str, events: list[Event]
) -> list[Event]:
    """The events whose ids were not applied before, each id once (a duplicate may share the
    batch), their ids now recorded as applied.

    Almost every id is new, so the ids are COPied first (about 40 % cheaper than an insert
    that reports what it inserted), as they come: an id already applied, or twice in the
    batch, makes the COPY fail inside its savepoint, and only then are the ids made distinct
    for the insert that skips known ones. When the COPY took every event's id, the batch is
    returned as it is, with no second pass over it.
    """
    if not events:
        return []
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "applied_events",
                records=[(projection, e.id) for e in events],
                columns=("projection", "event_id"),
            )
        return events  # all new, none twice: the key would have refused a repeat
    except asyncpg.UniqueViolationError:
        rows = await conn.fetch(
            "INSERT INTO applied_events (projection, event_id) "
            "SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id",
            projection,
            distinct(e.id for e in events),
        )
        fresh = {r["event_id"] for r in rows}
    first: list[Event] = []
    for event in events:  # first occurrence only
        if event.id in fresh:
            fresh.discard(event.id)
            first.append(event)
    return first


async def _bury(
    conn: asyncpg.Connection, projection: str, topic: str, dead: Sequence[DeadLetter]
) -> None:
    """Keep the dead letters with their reasons; one about a profile already deleted keeps its
    place and reason but not its bytes, which hold that profile's data (R26)."""
    await conn.execute(
        "INSERT INTO dead_letters "
        '(projection, topic, partition, "offset", reason, payload, profiles) '
        "SELECT $1, $2, p, o, "
        "  CASE WHEN erased THEN r || ' (payload erased: its profile is deleted)' ELSE r END, "
        "  CASE WHEN erased THEN ''::bytea ELSE b END, named "
        "FROM unnest($3::int[], $4::bigint[], $5::text[], $6::bytea[], $7::text[]) "
        "  AS d(p, o, r, b, n), "
        "LATERAL (SELECT string_to_array(n, ',')::uuid[] AS named) AS l, "
        "LATERAL (SELECT EXISTS (SELECT 1 FROM profile_tombstones t "
        "  WHERE t.profile_id = ANY(named)) AS erased) AS e "
        "ON CONFLICT DO NOTHING",
        projection,
        topic,
        [d.partition for d in dead],
        [d.offset for d in dead],
        [d.reason for d in dead],
        [d.payload for d in dead],
        [",".join(map(str, d.profiles)) for d in dead],  # arrays of unequal length: as text
    )


async def forget_dead_letters(conn: asyncpg.Connection, profile_ids: Sequence[UUID]) -> None:
    """Delete the dead letters about deleted profiles: their bytes hold personal data (R26)."""
    await conn.execute("DELETE FROM dead_letters WHERE profiles && $1::uuid[]", list(profile_ids))


async def dead_letters_of(conn: asyncpg.Connection, profile_id: UUID) -> list[dict[str, object]]:
    """The dead letters about a profile, for a personal data export (R27): the bytes as text
    (an event is JSON; bytes that are not UTF-8 show as replacement characters)."""
    rows = await conn.fetch(
        'SELECT projection, topic, partition, "offset", reason, received_at, payload '
        "FROM dead_letters WHERE profiles @> ARRAY[$1::uuid] ORDER BY id",
        profile_id,
    )
    return [{**plain.row(r), "payload": bytes(r["payload"]).decode(errors="replace")} for r in rows]
