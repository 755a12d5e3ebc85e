"""A deleted profile stays deleted in every read model (R26, R4).

The write API refuses events about a profile it no longer finds, but an event can still reach
the log after the deletion: an upstream service publishing straight to the topic, a late
campaign open, a write accepted while the deletion was not yet projected. Such an event must
not bring back a timeline line, a membership, a relation or a subscription of the profile.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import pytest
from structlog.testing import capture_logs

from bench.subscription_bench import Workload
from contracts import Event, RelationAdded, RelationData, SegmentData, SegmentEntered
from projections import read_models
from tests.factories import deleted, envelope, imported, opened, updated
from tests.pg import migrated_pool

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="session")]

GONE = uuid.UUID(int=1, version=4)
KEPT = uuid.UUID(int=2, version=4)

# every table of a profile: (table, column naming the profile)
_TABLES = (
    ("profiles", "profile_id"),
    ("history", "profile_id"),
    ("segment_members", "profile_id"),
    ("relations", "profile_id"),
    ("relations", "other_profile_id"),
    ("subscriptions", "profile_id"),
    ("subscription_ledger", "profile_id"),
)


def _segment(subject: uuid.UUID, seconds: int) -> Event:
    return SegmentEntered(**envelope(subject, seconds), data=SegmentData(segment_id="s"))


def _relation(subject: uuid.UUID, other: uuid.UUID, seconds: int) -> Event:
    data = RelationData(relation_type="like", other_profile_id=other)
    return RelationAdded(**envelope(subject, seconds), data=data)


def _late(seconds: int) -> list[Event]:
    """Everything that might arrive about GONE after its deletion."""
    subscription = Workload(seed=3).profile(GONE, 1, heavy=False)
    return [
        opened(GONE, seconds),
        _segment(GONE, seconds + 1),
        _relation(KEPT, GONE, seconds + 2),  # from a kept profile towards the deleted one
        _relation(GONE, KEPT, seconds + 3),
        updated(GONE, seconds + 4, set={"city": "Oslo"}),
        imported(GONE, seconds + 5, email="back@example.com"),  # R4: the id is never reused
        *subscription,
    ]


def _stream() -> list[Event]:
    before = [
        imported(GONE, 0, email="gone@example.com"),
        imported(KEPT, 1),
        _segment(GONE, 2),
        _relation(GONE, KEPT, 3),
        *Workload(seed=5).profile(GONE, 3, heavy=False),  # subscriptions and their ledger
    ]
    return [*before, deleted(GONE, 10), *_late(20)]


async def _counts(conn: asyncpg.Connection, profile: uuid.UUID) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table, column in _TABLES:
        n = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", profile)
        counts[f"{table}.{column}"] = n
    return counts


async def _project(conn: asyncpg.Connection, events: Sequence[Event], size: int) -> None:
    for start in range(0, len(events), size):
        async with conn.transaction():
            await read_models.project(conn, events[start : start + size])


@pytest.mark.parametrize("size", [1, 3, 100], ids=["event by event", "threes", "one batch"])
async def test_events_after_a_deletion_bring_nothing_back_R26_R4(
    database_url: str, size: int
) -> None:
    async with migrated_pool(database_url) as pool, pool.acquire() as conn:
        with capture_logs() as logs:
            await _project(conn, _stream(), size)
        dropped = [e for e in logs if e["event"] == "read_models.deleted_profiles_events_dropped"]
        assert sum(n for e in dropped for n in e["types"].values()) == len(_late(20))
        assert set((await _counts(conn, GONE)).values()) == {0}, await _counts(conn, GONE)
        assert await conn.fetchval("SELECT count(*) FROM profiles WHERE profile_id = $1", KEPT)
        assert await conn.fetchval(
            "SELECT count(*) FROM profile_tombstones WHERE profile_id = $1", GONE
        )


async def test_a_kept_profile_keeps_what_the_same_batches_bring_it_R26(database_url: str) -> None:
    """The events dropped are only those about the deleted profile: the kept one's timeline
    still gets its lines from the batches that carried them (its relation towards the deleted
    one is dropped with the relation: it could not exist)."""
    async with migrated_pool(database_url) as pool, pool.acquire() as conn:
        await _project(conn, [*_stream(), opened(KEPT, 40)], 3)
        kinds = await conn.fetch("SELECT kind FROM history WHERE profile_id = $1 ORDER BY at", KEPT)
        assert [r["kind"] for r in kinds] == ["import", "campaign"]
