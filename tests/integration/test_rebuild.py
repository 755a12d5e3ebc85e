"""Replaying the whole log into a new schema gives the same read models (DESIGN 5)."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import uuid
from dataclasses import replace

import asyncpg
import pytest

from services.rebuild import (
    RebuildFailedError,
    RebuildRefusedError,
    rebuild,
    rebuild_in_processes,
)
from tests.api import Api
from tests.events import new_profile, post, public
from tests.factories import imported

pytestmark = pytest.mark.postgres

# every read model, with the columns a replay must reproduce (not the identity columns)
TABLES = {
    "profiles": "*",
    "profile_tombstones": "*",
    "databases": "*",
    "database_fields": "*",
    "resources": "*",
    "subscriptions": "*",
    "subscription_ledger": "profile_id, sub_id, at, change, status, categories, how, ip, detail",
    "history": "profile_id, event_id, at, kind, type, summary::jsonb",
    "segment_members": "*",
    "scenario_runs": "*",
    "promo_codes": "*",
    "orders": "*",
    "relations": "*",
    "applied_events": "projection, event_id",  # applied_at is when, not what
}


async def test_a_rebuild_reproduces_every_read_model_DESIGN5(api: Api) -> None:
    # a little of everything on top of what the session's other tests wrote
    _, pid, _ = await new_profile(api, email="rebuild@example.com", fields={"city": "Oslo"})
    _, other, _ = await new_profile(api)
    posted = await post(
        api,
        public("campaign.opened", {"profile_id": pid}, campaign_id="r", ip="81.2.69.142"),
        public("relation.added", {"profile_id": pid}, relation_type="like", other_profile_id=other),
        public("segment.entered", {"profile_id": pid}, segment_id="rebuild"),
    )
    await api.read(f"/v1/profiles/{pid}", posted["consistency_token"])
    schema = f"rebuild_{uuid.uuid4().hex[:8]}"
    done = await rebuild(api.runtime, schema, batch_size=500)
    assert done.events > 0
    await _same_read_models(api, schema, pid)


@pytest.mark.kafka
async def test_two_processes_rebuild_from_kafka_what_one_would_DESIGN5(kafka_api: Api) -> None:
    """`profiles projections rebuild --workers 2`: two processes split the topic's partitions
    and fold every event exactly once into the new schema."""
    api = kafka_api
    db = await api.database()
    items = [{"email": f"worker{n}@example.com"} for n in range(200)]  # over every partition
    batch = await api.client.post(f"/v1/databases/{db}/profiles:batch", json={"items": items})
    assert batch.status_code == 200, batch.text
    pid = batch.json()["results"][0]["profile_id"]
    await api.read(f"/v1/profiles/{pid}", batch.json()["consistency_token"])
    schema = f"rebuild_{uuid.uuid4().hex[:8]}"
    done = await asyncio.to_thread(rebuild_in_processes, api.settings, schema, 2, 500)
    assert len(done.positions) == api.settings.kafka_partitions  # the profiles spread over all
    assert done.events == sum(done.positions.values())  # each record applied once, in all
    again = await asyncio.to_thread(rebuild_in_processes, api.settings, schema, 2, 500)
    assert again.events == 0  # a second run goes on from the schema's checkpoints
    await _same_read_models(api, schema, pid)


@pytest.mark.kafka
async def test_a_rebuild_whose_process_dies_fails_and_resumes_when_run_again_DESIGN5(
    kafka_api: Api,
) -> None:
    """SIGKILL one of two rebuild processes: the rebuild fails with a clear error and leaves no
    process behind; run again into the same schema, it ends with every read model right."""
    api = kafka_api
    events = [imported(uuid.uuid4(), n) for n in range(6000)]
    for start in range(0, len(events), 1000):
        await api.runtime.log.append(events[start : start + 1000])
    schema = f"rebuild_{uuid.uuid4().hex[:8]}"
    running = asyncio.create_task(  # batches of 50: long enough to be killed midway
        asyncio.to_thread(rebuild_in_processes, api.settings, schema, 2, 50, 50)
    )
    applied = f"SELECT coalesce(sum(next_offset), 0) AS n FROM {schema}.checkpoints"
    for _ in range(600):
        await asyncio.sleep(0.05)
        with contextlib.suppress(asyncpg.UndefinedTableError):
            if (await api.fetch(applied))[0]["n"] > 0:
                break
    members = multiprocessing.active_children()
    assert len(members) == 2
    os.kill(members[0].pid or 0, signal.SIGKILL)
    with pytest.raises(RebuildFailedError, match="run the same command again"):
        await running
    assert multiprocessing.active_children() == []
    done = await asyncio.to_thread(rebuild_in_processes, api.settings, schema, 2, 500)
    assert 0 < done.events < sum(done.positions.values())  # only what the first run had not
    pid = str(events[-1].subject)
    await _same_read_models(api, schema, pid)


async def test_rebuild_processes_need_kafka_and_their_own_server(api: Api) -> None:
    with pytest.raises(RebuildRefusedError, match="needs Kafka"):
        rebuild_in_processes(api.settings, "rebuild_nowhere", 2)
    on_kafka = replace(api.settings, kafka_bootstrap="127.0.0.1:9", database_url=None)
    with pytest.raises(RebuildRefusedError, match="needs --database-url"):
        rebuild_in_processes(on_kafka, "rebuild_nowhere", 2)


async def _same_read_models(api: Api, schema: str, pid: str) -> None:
    """Every read model of `schema` holds the live one's rows, once the live projector has
    caught up with the log's end (a read of `pid` waits for it); then `schema` is dropped."""
    live = await api.runtime.log.ends()
    await api.read(f"/v1/profiles/{pid}", _token(live))
    for table, columns in TABLES.items():
        rows = await api.fetch(
            f"SELECT (SELECT count(*) FROM (SELECT {columns} FROM read_models.{table} "
            f"EXCEPT ALL SELECT {columns} FROM {schema}.{table}) a) AS missing, "
            f"(SELECT count(*) FROM (SELECT {columns} FROM {schema}.{table} "
            f"EXCEPT ALL SELECT {columns} FROM read_models.{table}) b) AS extra, "
            f"(SELECT count(*) FROM {schema}.{table}) AS total"
        )
        assert (table, rows[0]["missing"], rows[0]["extra"]) == (table, 0, 0)
    await api.fetch(f"DROP SCHEMA {schema} CASCADE")


async def test_the_live_schema_cannot_be_the_target(api: Api) -> None:
    with pytest.raises(ValueError, match="live read schema"):
        await rebuild(api.runtime, "read_models")


def _token(ends: dict[int, int]) -> str:
    from services import consistency
    from services.eventlog.port import Position

    return consistency.token([Position(p, n - 1) for p, n in ends.items() if n > 0])
