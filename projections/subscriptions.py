"""The resources and subscriptions read models, and the consent ledger (R9-R17, R20)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from contracts import Event, ResourceCreated, ResourceUpdated
from domain.subscription_list import SUBSCRIPTION_TYPES, LedgerEntry, fold
from domain.subscriptions import Subscription
from projections import bulk, plain

_RESOURCE_TYPES = frozenset({"resource.created", "resource.updated"})
# every event type `project` reads (`read_models` hands it only those)
HANDLES = _RESOURCE_TYPES | SUBSCRIPTION_TYPES | {"profile.deleted"}
_SUB_COLUMNS = (
    "sub_id, profile_id, resource_id, channel, contact, status, priority, categories, fields, "
    "custom, deleted, created_at, updated_at"
)
_SUB_COLUMN_LIST = [c.strip() for c in _SUB_COLUMNS.split(",")]


@dataclass(frozen=True)
class StoredSubscription:
    """A subscription row: the domain value plus its bookkeeping."""

    profile_id: UUID
    subscription: Subscription
    updated_at: datetime


async def load(
    conn: asyncpg.Connection, profiles: Iterable[UUID]
) -> dict[UUID, list[StoredSubscription]]:
    """Every subscription of the given profiles, in one query."""
    return await _fetch(conn, "profile_id", profiles)


async def _fetch(
    conn: asyncpg.Connection, column: Literal["profile_id", "sub_id"], ids: Iterable[UUID]
) -> dict[UUID, list[StoredSubscription]]:
    """Subscriptions whose `column` is one of `ids`, grouped by profile, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE {column} = ANY($1::uuid[]) "
        "ORDER BY profile_id, created_at, sub_id",
        list(ids),
    )
    out: dict[UUID, list[StoredSubscription]] = {}
    for r in rows:
        out.setdefault(r["profile_id"], []).append(_stored(r))
    return out


async def ledger(conn: asyncpg.Connection, profile_id: UUID) -> dict[UUID, list[dict[str, Any]]]:
    """The consent history of each subscription of a profile, oldest first."""
    rows = await conn.fetch(
        "SELECT sub_id, at, change, status, categories, how, ip, detail FROM subscription_ledger "
        "WHERE profile_id = $1 ORDER BY id",
        profile_id,
    )
    out: dict[UUID, list[dict[str, Any]]] = {}
    for r in rows:
        entry = {k: r[k] for k in ("at", "change", "status", "categories", "how", "ip", "detail")}
        out.setdefault(r["sub_id"], []).append(entry)
    return out


async def resource(conn: asyncpg.Connection, resource_id: str) -> asyncpg.Record | None:
    """One resource's row, or None."""
    return await conn.fetchrow("SELECT * FROM resources WHERE resource_id = $1", resource_id)


async def project(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Resources, subscriptions and ledger lines of one batch, set-based."""
    await _resources(
        conn,
        [e for e in events if e.type in _RESOURCE_TYPES],  # type: ignore[misc]
    )
    own = [e for e in events if e.type in SUBSCRIPTION_TYPES]
    gone = [e.subject for e in events if e.type == "profile.deleted"]
    if own:
        await _subscriptions(conn, own)
    if gone:  # R26: the profile's subscriptions and their history go with it
        await conn.execute("DELETE FROM subscriptions WHERE profile_id = ANY($1::uuid[])", gone)
        await conn.execute(
            "DELETE FROM subscription_ledger WHERE profile_id = ANY($1::uuid[])", gone
        )


async def _subscriptions(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    per_profile: dict[UUID, list[Event]] = {}
    referenced: set[UUID] = set()
    for event in events:
        per_profile.setdefault(event.subject, []).append(event)
        sub_id: UUID | None = getattr(event.data, "sub_id", None)
        if sub_id is not None:
            referenced.add(sub_id)
    # every event names the subscription it changes, so only those rows are loaded, not the
    # profiles' whole lists: a batch over 5,000 profiles reads ~5,000 rows, not ~50,000
    stored = await _fetch(conn, "sub_id", referenced)
    upserts: list[tuple[UUID, Subscription, datetime]] = []
    # added in this batch: not in the table, since every subscription an event names was
    # loaded above, so COPied straight in (no staging table, no conflict to look for)
    inserts: list[tuple[UUID, Subscription, datetime]] = []
    moved = shifts_of_unnamed(events, referenced)  # only the priority changed (R13 shifts)
    removed: list[UUID] = []
    lines: list[tuple[UUID, LedgerEntry]] = []
    for profile_id, own in per_profile.items():
        before = stored.get(profile_id, [])
        previous = {s.subscription.sub_id: s for s in before}
        folded = fold([s.subscription for s in before], own)
        for sub in folded.subscriptions:
            if sub.sub_id in folded.changed:
                old = previous.get(sub.sub_id)
                when = folded.updated_at.get(
                    sub.sub_id, old.updated_at if old is not None else sub.created_at
                )
                if old is None:
                    inserts.append((profile_id, sub, when))
                elif _only_priority_moved(sub, old.subscription):
                    moved.append((sub.sub_id, sub.priority, when))
                else:
                    upserts.append((profile_id, sub, when))
        removed += folded.removed
        lines += [(profile_id, entry) for entry in folded.ledger]
    if removed:
        await conn.execute("DELETE FROM subscriptions WHERE sub_id = ANY($1::uuid[])", removed)
    if moved:  # two narrow columns by key, not a whole row through the staging table
        await conn.execute(
            "UPDATE subscriptions s SET priority = u.p, updated_at = u.w "
            "FROM unnest($1::uuid[], $2::int[], $3::timestamptz[]) AS u(id, p, w) "
            "WHERE s.sub_id = u.id",
            [m[0] for m in moved],
            [m[1] for m in moved],
            [m[2] for m in moved],
        )
    if inserts:
        await bulk.insert(conn, "subscriptions", _SUB_COLUMN_LIST, _rows(inserts))
    if upserts:
        await _upsert(conn, upserts)
    if lines:
        await _ledger(conn, lines)


async def _upsert(
    conn: asyncpg.Connection, rows: list[tuple[UUID, Subscription, datetime]]
) -> None:
    staged = await bulk.stage(conn, "subscriptions", _SUB_COLUMN_LIST, _rows(rows))
    await conn.execute(
        f"""
        INSERT INTO subscriptions ({_SUB_COLUMNS}) SELECT {_SUB_COLUMNS} FROM {staged}
        ON CONFLICT (sub_id) DO UPDATE SET
            status = excluded.status, priority = excluded.priority,
            categories = excluded.categories, fields = excluded.fields, custom = excluded.custom,
            deleted = excluded.deleted, updated_at = excluded.updated_at
        """
    )


def _rows(rows: list[tuple[UUID, Subscription, datetime]]) -> list[tuple[Any, ...]]:
    """Subscription rows in the order of _SUB_COLUMNS."""
    return [
        (
            s.sub_id,
            p,
            s.resource_id,
            s.channel,
            s.contact,
            s.status,
            s.priority,
            dict(s.categories),
            dict(s.fields),
            dict(s.custom),
            s.deleted,
            s.created_at,
            w,
        )
        for p, s, w in rows
    ]


async def _ledger(conn: asyncpg.Connection, lines: list[tuple[UUID, LedgerEntry]]) -> None:
    await bulk.insert(
        conn,
        "subscription_ledger",
        ("profile_id", "sub_id", "at", "change", "status", "categories", "how", "ip", "detail"),
        [
            (
                p,
                e.sub_id,
                e.at,
                e.change,
                e.status,
                None if e.categories is None else dict(e.categories),
                e.how,
                e.ip,
                e.detail,
            )
            for p, e in lines
        ],
    )


async def _resources(
    conn: asyncpg.Connection, events: Sequence[ResourceCreated | ResourceUpdated]
) -> None:
    if not events:
        return
    latest = {e.subject: e for e in events}  # the whole configuration is in each event
    await conn.executemany(
        "INSERT INTO resources (resource_id, database_id, name, channels, categories, "
        "custom_fields, raise_priority, opt_in, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (resource_id) DO UPDATE SET "
        "name = excluded.name, channels = excluded.channels, categories = excluded.categories, "
        "custom_fields = excluded.custom_fields, raise_priority = excluded.raise_priority, "
        "opt_in = excluded.opt_in, updated_at = excluded.updated_at",
        [
            (
                e.data.resource_id,
                e.database_id,
                e.data.name,
                list(e.data.channels),
                list(e.data.categories),
                [f.model_dump() for f in e.data.custom_fields],
                e.data.raise_priority,
                e.data.opt_in,
                e.time,
            )
            for e in latest.values()
        ],
    )


def shifts_of_unnamed(
    events: Sequence[Event], named: set[UUID]
) -> list[tuple[UUID, int, datetime]]:
    """The R13 shifts of subscriptions no event of the batch names, as (sub_id, priority, when).

    An add with R13 on moves up to 19 others; loading, folding and freezing each of them only to
    change its priority was most of a replay's work. A subscription no event of the batch names
    can only have been moved, so its last move is its new priority; the UPDATE by key changes
    nothing for one that left the list in an earlier batch, as the fold would.

    Keyed by each id's integer: a UUID hashes in Python code (`uuid.py`), an int in C, and a
    replay's adds name several moved subscriptions each (two hashes a move: 2.9 M of them in
    188,000 events of the replay benchmark).
    """
    named_keys = {sub_id.int for sub_id in named}
    last: dict[int, tuple[UUID, int, datetime]] = {}
    for event in events:
        if event.type == "subscription.added":
            when = event.time
            for sub_id, priority in event.data.reprioritised.items():
                if (key := sub_id.int) not in named_keys:
                    last[key] = (sub_id, priority, when)
    return list(last.values())


def _only_priority_moved(new: Subscription, old: Subscription) -> bool:
    """Whether `new` is `old` with another priority (an R13 shift): compared field by field, not
    by building a copy of `new` with the old priority."""
    return all(getattr(new, name) == getattr(old, name) for name in _BUT_PRIORITY)


_BUT_PRIORITY = tuple(f.name for f in fields(Subscription) if f.name != "priority")


def _stored(r: asyncpg.Record) -> StoredSubscription:
    return StoredSubscription(r["profile_id"], Subscription.of(r), r["updated_at"])


async def raw(conn: asyncpg.Connection, profile_id: UUID) -> list[dict[str, object]]:
    """Every stored subscription row of a profile, for a personal data export (R27)."""
    rows = await conn.fetch(
        "SELECT * FROM subscriptions WHERE profile_id = $1 ORDER BY created_at", profile_id
    )
    return [plain.row(r) for r in rows]


async def raw_ledger(conn: asyncpg.Connection, profile_id: UUID) -> list[dict[str, object]]:
    """Every consent ledger line of a profile, for a personal data export (R27)."""
    rows = await conn.fetch(
        "SELECT * FROM subscription_ledger WHERE profile_id = $1 ORDER BY id", profile_id
    )
    return [plain.row(r) for r in rows]
