"""Identity claims under concurrency, straight against PostgreSQL (R6)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services import identity, ingest_schema
from tests.pg import fresh_database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with fresh_database(database_url) as url:
        created = await asyncpg.create_pool(url, min_size=8, max_size=8)
        assert created is not None
        async with created.acquire() as conn:
            await ingest_schema.install(conn)
        yield created
        await created.close()


async def test_overlapping_batches_agree_on_one_profile_per_email_R6(pool: asyncpg.Pool) -> None:
    emails = [f"u{n}@example.com" for n in range(300)]

    async def client(seed: int) -> list[tuple[str, identity.Resolution]]:
        mine = random.Random(seed).sample(emails, 200)  # every client its own order
        claims = [identity.Claim((("email", e),)) for e in mine]
        async with pool.acquire() as conn:
            return list(zip(mine, await identity.resolve(conn, "db", claims), strict=True))

    results = await asyncio.gather(*(client(seed) for seed in range(8)))
    owner: dict[str, set[object]] = {}
    created: dict[str, int] = {}
    for email, resolution in (pair for batch in results for pair in batch):
        assert isinstance(resolution, identity.Resolved)
        owner.setdefault(email, set()).add(resolution.profile_id)
        created[email] = created.get(email, 0) + resolution.created
    assert all(len(ids) == 1 for ids in owner.values())
    assert all(count == 1 for count in created.values())
    stored = await pool.fetchval("SELECT count(*) FROM ingest.profiles")
    assert stored == len(owner)


async def test_a_batch_sees_its_own_earlier_items_R6(pool: asyncpg.Pool) -> None:
    claims = [
        identity.Claim((("email", "a@x.org"), ("phone", "+4930000001"))),
        identity.Claim((("phone", "+4930000001"), ("email", "b@x.org"))),  # same profile, new email
        identity.Claim((("email", "a@x.org"),)),  # a@ was freed by the item before: a new profile
    ]
    async with pool.acquire() as conn:
        first, second, third = await identity.resolve(conn, "db", claims)
    assert isinstance(first, identity.Resolved)
    assert isinstance(second, identity.Resolved)
    assert isinstance(third, identity.Resolved)
    assert second.profile_id == first.profile_id
    assert not second.created
    assert third.created
    assert third.profile_id != first.profile_id
    rows = await pool.fetch(
        "SELECT kind, value, profile_id FROM ingest.identities ORDER BY kind, value"
    )
    assert [(r["kind"], r["value"], r["profile_id"]) for r in rows] == [
        ("email", "a@x.org", third.profile_id),
        ("email", "b@x.org", first.profile_id),
        ("phone", "+4930000001", first.profile_id),
    ]
