"""The profiles read model's writes against PostgreSQL: the narrow activity update (R21, R7)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from domain.identity import md5_id, xxh_id
from projections import profiles
from tests.factories import T0, imported, opened, status_changed, updated
from tests.pg import migrated_pool

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as p:
        yield p


async def test_activity_rewrites_its_columns_and_keeps_the_rest_R21(pool: asyncpg.Pool) -> None:
    """One batch with a narrow update, a status move and a whole-row merge; every column of
    every row read back as the fold made it."""
    located, moved, merged = (uuid.uuid4() for _ in range(3))
    async with pool.acquire() as conn:
        await profiles.project(
            conn,
            [
                imported(p, 0, email=f"{n}@example.com", phones=(f"+44207946000{n}",),
                         custom={"score": n}, fields={"first_name": f"N{n}"})
                for n, p in enumerate((located, moved, merged))
            ],
        )  # fmt: skip
        batch = [
            opened(located, 10),
            status_changed(moved, 11, "unsubscribed"),
            opened(merged, 12),
            updated(merged, 13, custom_set={"score": 9}),
        ]
        loaded = await profiles.load(conn, {e.subject for e in batch})
        assert profiles.apply(loaded, batch).activity_only == {located, moved}
        async with conn.transaction():
            await profiles.project(conn, batch)
        rows = {r["profile_id"]: r for r in await conn.fetch("SELECT * FROM profiles")}
    one = rows[located]
    assert one["fields"] == {"first_name": "N0", "city": "London", "latest_ip": "81.2.69.142"}
    assert sorted(one["located"]) == ["city", "latest_ip"]
    assert (one["version"], one["updated_at"]) == (2, T0 + timedelta(seconds=10))
    assert (one["email"], one["phones"], one["custom"]) == (
        "0@example.com", ["+442079460000"], {"score": 0},
    )  # fmt: skip
    assert (one["status"], one["import_mode"]) == ("subscribed", "api")
    two = rows[moved]
    assert (two["status"], two["version"], two["fields"]) == (
        "unsubscribed",
        2,
        {"first_name": "N1"},
    )
    assert (two["email"], two["custom"]) == ("1@example.com", {"score": 1})
    three = rows[merged]
    assert (three["custom"], three["version"], three["fields"]["city"]) == (
        {"score": 9},
        3,
        "London",
    )
    for pid, row in rows.items():  # the hashed ids are not among the narrow columns: kept
        assert (row["md5_id"], row["xxh_id"]) == (md5_id(pid), xxh_id(pid))


async def test_field_changes_update_profiles_in_place(pool: asyncpg.Pool) -> None:
    """Profiles leave room on their pages, so a change that keeps email and phones (the common
    one) is a HOT update: none of the five indexes, the GIN index on phones among them, gets
    an entry for the new row version. With full pages 85 of these 10,000 updates were HOT,
    with room 7,368."""
    ids = [uuid.uuid4() for _ in range(2000)]
    async with pool.acquire() as conn:
        # as in the subscriptions HOT test: no autovacuum snapshot holding back the pruning
        await conn.execute("ALTER TABLE profiles SET (autovacuum_enabled = off)")
        async with conn.transaction():
            await profiles.project(
                conn,
                [imported(p, 0, email=f"{n}@example.com", phones=("+442079460000",),
                          fields={"first_name": "Ann"}, custom={"score": n})
                 for n, p in enumerate(ids)],
            )  # fmt: skip
        for step in range(1, 6):  # a batch a step, each changing every profile once
            async with conn.transaction():
                await profiles.project(
                    conn,
                    [updated(p, step, set={"last_name": f"L{step}"}, custom_set={"step": step})
                     for p in ids],
                )  # fmt: skip
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        updates, hot = await conn.fetchrow(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relid = 'profiles'::regclass"
        )
        assert await conn.fetchval("SELECT count(*) FROM profiles WHERE version = 6") == 2000
    assert updates == 5 * 2000
    assert hot > 0.5 * updates, f"{hot} of {updates} updates were HOT"
