"""Databases and custom fields over real HTTP and PostgreSQL (R1-R3)."""

from __future__ import annotations

import pytest

from tests.api import Api

pytestmark = pytest.mark.postgres


async def test_structure_lists_custom_and_standard_fields_R1_R2(api: Api) -> None:
    db = await api.database(
        plan={"type": "enum", "options": "free, pro ,free,team"},
        visits={"type": "number"},
        card={"type": "line", "unique": True},
    )
    got = (await api.client.get(f"/v1/databases/{db}")).json()
    assert [(f["name"], f["type"]) for f in got["fields"]] == [
        ("plan", "enum"),
        ("visits", "number"),
        ("card", "line"),
    ]
    assert got["fields"][0]["options"] == ["free", "pro", "team"]
    assert got["fields"][2]["unique"] is True
    groups = {f["group"] for f in got["standard_fields"]}
    assert groups == {"personal", "reg", "tracked"}
    assert {"first_name", "reg_ip", "latitude"} <= {f["name"] for f in got["standard_fields"]}


async def test_database_id_is_unique_and_unknown_is_404_R1(api: Api) -> None:
    db = await api.database()
    again = await api.client.post("/v1/databases", json={"database_id": db, "name": "x"})
    assert again.status_code == 409
    assert again.json()["errors"][0]["rule"] == "database_exists"
    assert (await api.client.get("/v1/databases/nope_nope")).status_code == 404
    imported = await api.client.post("/v1/databases/nope_nope/profiles", json={})
    assert imported.status_code == 404


async def test_bad_field_definitions_list_every_error_R3(api: Api) -> None:
    db = await api.database()
    bad = await api.client.post(
        f"/v1/databases/{db}/fields",
        json={"name": "First Name", "type": "enum", "unique": True},
    )
    assert bad.status_code == 422
    rules = {e["rule"] for e in bad.json()["errors"]}
    assert {"field_name_syntax", "enum_needs_options", "unique_not_supported"} <= rules
    reserved = await api.client.post(
        f"/v1/databases/{db}/fields", json={"name": "first_name", "type": "line"}
    )
    assert reserved.json()["errors"][0]["rule"] == "reserved_name"


async def test_removed_field_disappears_from_reads_and_name_is_retired_R1(api: Api) -> None:
    db = await api.database(plan={"type": "line"}, visits={"type": "number"})
    created = await api.client.post(
        f"/v1/databases/{db}/profiles", json={"custom": {"plan": "pro", "visits": 2}}
    )
    pid = created.json()["profile_id"]
    before = await api.read(f"/v1/profiles/{pid}", created.json()["consistency_token"])
    assert before.json()["custom"] == {"plan": "pro", "visits": 2}
    removed = await api.client.delete(f"/v1/databases/{db}/fields/plan")
    assert removed.status_code == 200
    after = await api.read(f"/v1/profiles/{pid}", removed.headers["Consistency-Token"])
    assert after.json()["custom"] == {"visits": 2}
    assert after.json()["tabs"]["additional"] == {"visits": 2}
    again = await api.client.post(
        f"/v1/databases/{db}/fields", json={"name": "plan", "type": "number"}
    )
    assert again.status_code == 422
    assert again.json()["errors"][0]["rule"] == "field_name_retired"
    stale = await api.client.post(f"/v1/databases/{db}/profiles", json={"custom": {"plan": "x"}})
    assert stale.json()["errors"][0] == {
        "field": "custom.plan",
        "rule": "unknown_field",
        "value": "plan",
    }


async def test_adding_and_removing_fields_never_rewrites_profiles_R1(api: Api) -> None:
    db = await api.database(plan={"type": "line"})
    token = ""
    for n in range(20):
        created = await api.client.post(
            f"/v1/databases/{db}/profiles", json={"custom": {"plan": f"p{n}"}}
        )
        token = created.json()["consistency_token"]
    await api.read(f"/v1/profiles/{created.json()['profile_id']}", token)
    sql = (
        "SELECT pg_relation_filenode('read_models.profiles'), "
        "array_agg(xmin::text || ctid::text ORDER BY profile_id) "
        "FROM read_models.profiles WHERE database_id = $1"
    )
    before = await api.fetch(sql, db)
    added = await api.client.post(
        f"/v1/databases/{db}/fields", json={"name": "extra", "type": "tags"}
    )
    removed = await api.client.delete(f"/v1/databases/{db}/fields/plan")
    assert added.status_code == 201
    await api.read(f"/v1/databases/{db}", removed.headers["Consistency-Token"])
    await api.read(
        f"/v1/profiles/{created.json()['profile_id']}", removed.headers["Consistency-Token"]
    )
    assert await api.fetch(sql, db) == before  # same file, same row versions
