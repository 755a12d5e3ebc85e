"""Interactions and data read models (R23-R25): segments, scenarios, promo codes, orders, relations.

Each is a small table written set-based per batch, in event order; deleting a profile removes
its rows and the other side of its relations (R26).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from contracts import Event, RelationAdded, RelationRemoved
from projections import plain

_SEGMENT_IN = (
    "INSERT INTO segment_members (segment_id, profile_id, database_id, since, manual) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (segment_id, profile_id) DO NOTHING"
)
_SEGMENT_OUT = "DELETE FROM segment_members WHERE segment_id = $1 AND profile_id = $2"
# a new run after the profile's last one of the scenario (R24: each run kept with its result)
_SCENARIO_IN = (
    "INSERT INTO scenario_runs (profile_id, scenario_id, run, entered_at, manual) "
    "SELECT $1, $2, coalesce(max(run), 0) + 1, $3, $4 FROM scenario_runs "
    "WHERE profile_id = $1 AND scenario_id = $2"
)
# the last run finishes (one finished without an enrolment seen is a run of its own)
_SCENARIO_DONE = (
    "INSERT INTO scenario_runs (profile_id, scenario_id, run, finished_at, result) "
    "SELECT $1, $2, coalesce(max(run), 1), $3, $4 FROM scenario_runs "
    "WHERE profile_id = $1 AND scenario_id = $2 "
    "ON CONFLICT (profile_id, scenario_id, run) DO UPDATE SET "
    "finished_at = excluded.finished_at, result = excluded.result"
)
_PROMO = (
    "INSERT INTO promo_codes (profile_id, code, promo_id, state, updated_at) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (profile_id, code) DO UPDATE SET "
    "promo_id = coalesce(excluded.promo_id, promo_codes.promo_id), state = excluded.state, "
    "updated_at = excluded.updated_at"
)
_ORDER = (
    "INSERT INTO orders (profile_id, order_id, status, currency, total, items, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (profile_id, order_id) DO UPDATE SET "
    "status = excluded.status, currency = excluded.currency, total = excluded.total, "
    "items = excluded.items, updated_at = excluded.updated_at"
)
_RELATION_IN = (
    "INSERT INTO relations (profile_id, other_profile_id, relation_type, direction, since) "
    "VALUES ($1, $2, $3, 'out', $4), ($2, $1, $3, 'in', $4) ON CONFLICT DO NOTHING"
)
_RELATION_OUT = (
    "DELETE FROM relations WHERE relation_type = $3 AND ((profile_id = $1 AND "
    "other_profile_id = $2 AND direction = 'out') OR (profile_id = $2 AND other_profile_id = $1 "
    "AND direction = 'in'))"
)
_TYPES = frozenset(
    {
        "segment.entered",
        "segment.exited",
        "scenario.entered",
        "scenario.finished",
        "promo_code.attached",
        "promo_code.detached",
        "promo_code.activated",
        "order.recorded",
        "relation.added",
        "relation.removed",
    }
)
# every event type `project` reads (`read_models` hands it only those)
HANDLES = _TYPES | {"profile.deleted"}


async def project(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Apply the batch's interaction events in order, statement by kind (executemany)."""
    own = [e for e in events if e.type in _TYPES]
    # consecutive events of one statement go together: order between statements is kept
    run: list[tuple[str, tuple[Any, ...]]] = [_statement(e) for e in own]
    start = 0
    while start < len(run):
        end = start
        while end < len(run) and run[end][0] == run[start][0]:
            end += 1
        await conn.executemany(run[start][0], [args for _, args in run[start:end]])
        start = end
    gone = [e.subject for e in events if e.type == "profile.deleted"]
    if gone:
        await _forget(conn, gone)


def _statement(e: Any) -> tuple[str, tuple[Any, ...]]:
    d, pid, at = e.data, e.subject, e.time
    if e.type == "segment.entered":
        return _SEGMENT_IN, (d.segment_id, pid, e.database_id, at, d.manual)
    if e.type == "segment.exited":
        return _SEGMENT_OUT, (d.segment_id, pid)
    if e.type == "scenario.entered":
        return _SCENARIO_IN, (pid, d.scenario_id, at, d.manual)
    if e.type == "scenario.finished":
        return _SCENARIO_DONE, (pid, d.scenario_id, at, d.result)
    if e.type.startswith("promo_code."):
        return _PROMO, (pid, d.code, d.promo_id, e.type.partition(".")[2], at)
    if e.type == "order.recorded":
        items = [i.model_dump(mode="json") for i in d.items]
        return _ORDER, (pid, d.order_id, d.status, d.currency, d.total, items, at)
    if e.type == "relation.added":
        return _RELATION_IN, (pid, d.other_profile_id, d.relation_type, at)
    return _RELATION_OUT, (pid, d.other_profile_id, d.relation_type)


def other_profile(event: Event) -> UUID | None:
    """The second profile an event names besides its subject: a relation's other side."""
    if isinstance(event, RelationAdded | RelationRemoved):
        return event.data.other_profile_id
    return None


RELATION_TYPES = frozenset({"relation.added", "relation.removed"})


async def _forget(conn: asyncpg.Connection, gone: list[UUID]) -> None:
    for table in _OWN_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE profile_id = ANY($1::uuid[])", gone)
    await conn.execute(
        "DELETE FROM relations WHERE profile_id = ANY($1::uuid[]) "
        "OR other_profile_id = ANY($1::uuid[])",
        gone,
    )


_OWN_TABLES = ("segment_members", "scenario_runs", "promo_codes", "orders")
_TABLES = (*_OWN_TABLES, "relations")  # a relation is a row of each side: forgotten both ways


async def raw(conn: asyncpg.Connection, profile_id: UUID) -> dict[str, list[dict[str, object]]]:
    """Every interaction and data row of a profile, by table, for a data export (R27)."""
    return {
        table: [
            plain.row(r)
            for r in await conn.fetch(f"SELECT * FROM {table} WHERE profile_id = $1", profile_id)
        ]
        for table in _TABLES
    }


_LISTS = {
    "segments": "SELECT segment_id, since, manual FROM segment_members WHERE profile_id = $1 "
    "ORDER BY since DESC",
    "scenarios": "SELECT scenario_id, run, entered_at, finished_at, result, manual "
    "FROM scenario_runs WHERE profile_id = $1 "
    "ORDER BY coalesce(finished_at, entered_at) DESC, run DESC",
    "promo-codes": "SELECT code, promo_id, state, updated_at FROM promo_codes "
    "WHERE profile_id = $1 ORDER BY updated_at DESC",
    "orders": "SELECT order_id, status, currency, total, items, updated_at FROM orders "
    "WHERE profile_id = $1 ORDER BY updated_at DESC",
    "relations": "SELECT other_profile_id, relation_type, direction, since FROM relations "
    "WHERE profile_id = $1 ORDER BY since DESC",
    "triggers": "SELECT event_id, at, summary::jsonb AS summary FROM history WHERE profile_id = $1 "
    "AND kind = 'trigger' ORDER BY at DESC, seq DESC LIMIT 1000",
    "forms": "SELECT event_id, at, summary::jsonb AS summary FROM history WHERE profile_id = $1 "
    "AND kind = 'form' ORDER BY at DESC, seq DESC LIMIT 1000",
}
LISTS = tuple(_LISTS)


async def listing(conn: asyncpg.Connection, what: str, profile_id: UUID) -> list[dict[str, object]]:
    """One of a profile's interaction or data lists (see LISTS)."""
    return [plain.row(r) for r in await conn.fetch(_LISTS[what], profile_id)]


async def members(
    conn: asyncpg.Connection, segment_id: str, chunk: int = 5000
) -> AsyncIterator[list[dict[str, object]]]:
    """A segment's members in chunks, read with a server-side cursor (a transaction is open)."""
    rows: list[dict[str, object]] = []
    async for r in conn.cursor(
        "SELECT profile_id, database_id, since, manual FROM segment_members "
        "WHERE segment_id = $1 ORDER BY profile_id",
        segment_id,
        prefetch=chunk,
    ):
        rows.append(plain.row(r))
        if len(rows) == chunk:
            yield rows
            rows = []
    if rows:
        yield rows
