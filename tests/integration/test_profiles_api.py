"""Profile imports, identity and reads over real HTTP and PostgreSQL (R3-R8, R21, R26-R28)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.identity import md5_id, xxh_id
from tests.api import Api

pytestmark = pytest.mark.postgres


async def _import(api: Api, db: str, expect: int = 201, **body: Any) -> dict[str, Any]:
    response = await api.client.post(f"/v1/databases/{db}/profiles", json=body)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def _events(api: Api) -> int:
    rows = await api.fetch("SELECT count(*) AS n FROM eventlog.events")
    return int(rows[0]["n"])


async def test_every_bad_value_is_named_and_nothing_is_written_R3(api: Api) -> None:
    db = await api.database(
        visits={"type": "number"},
        plan={"type": "enum", "options": "free,pro"},
        seen={"type": "date"},
    )
    before = await _events(api)
    bad = await api.client.post(
        f"/v1/databases/{db}/profiles",
        json={
            "email": "ok@example.com",
            "phones": ["12"],
            "fields": {"birthday": "yesterday", "nickname": "x"},
            "custom": {"visits": "1.5", "plan": "gold", "seen": "2019-08-22", "ghost": 1},
        },
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    errors = {(e["field"], e["rule"]) for e in bad.json()["errors"]}
    assert errors == {
        ("phones", "phone_e164"),
        ("fields.birthday", "date_format"),
        ("fields.nickname", "unknown_field"),
        ("custom.visits", "number_format"),
        ("custom.plan", "enum_option"),
        ("custom.seen", "date_format"),
        ("custom.ghost", "unknown_field"),
    }
    assert await _events(api) == before
    rows = await api.fetch("SELECT count(*) AS n FROM ingest.identities WHERE database_id = $1", db)
    assert rows[0]["n"] == 0


async def test_values_are_stored_canonically_R3(api: Api) -> None:
    db = await api.database(seen={"type": "date"}, vip={"type": "boolean"}, bought={"type": "tags"})
    made = await _import(
        api,
        db,
        custom={"seen": "2019-08-22T03:00:00+03:00", "vip": "Yes", "bought": "a| b ;a,,c"},
    )
    got = await api.read(f"/v1/profiles/{made['profile_id']}", made["consistency_token"])
    assert got.json()["custom"] == {
        "seen": "2019-08-22T00:00:00.000Z",
        "vip": True,
        "bought": ["a", "b", "c"],
    }


async def test_md5_and_xxh_identify_the_profile_R5(api: Api) -> None:
    db = await api.database()
    made = await _import(api, db, email="h@example.com")
    pid = made["profile_id"]
    md5, xxh = md5_id(UUID(pid)), xxh_id(UUID(pid))
    by_md5 = await api.read(f"/v1/profiles/by-md5/{md5}", made["consistency_token"])
    by_xxh = await api.read(f"/v1/profiles/by-xxh/{xxh.upper()}", made["consistency_token"])
    assert by_md5.json()["profile_id"] == by_xxh.json()["profile_id"] == pid
    assert by_md5.json()["md5_id"] == md5
    again = await _import(api, db, expect=200, xxh_id=xxh, fields={"first_name": "Hal"})
    assert again["profile_id"] == pid
    assert again["created"] is False
    by_md5_import = await _import(api, db, expect=200, md5_id=md5.upper(), custom={})
    assert by_md5_import["profile_id"] == pid
    elsewhere = await api.database()  # R4: an id names a profile of its own database only
    for ref in ({"profile_id": pid}, {"md5_id": md5}, {"xxh_id": xxh}):
        refused = await api.client.post(f"/v1/databases/{elsewhere}/profiles", json=ref)
        assert refused.status_code == 404, (ref, refused.text)
        assert refused.json()["errors"][0]["rule"] == "profile_not_found"


async def test_email_is_unique_per_database_case_insensitive_R6(api: Api) -> None:
    shop, blog = await api.database(), await api.database()
    first = await _import(api, shop, email=" Ann@Example.COM ")
    same = await _import(api, shop, expect=200, email="ann@example.com")
    other_db = await _import(api, blog, email="ann@example.com")
    assert same["profile_id"] == first["profile_id"]
    assert other_db["profile_id"] != first["profile_id"]
    got = await api.read(
        f"/v1/databases/{shop}/profiles/by-email/ANN@example.com ", same["consistency_token"]
    )
    assert got.json()["profile_id"] == first["profile_id"]


async def test_profile_without_email_reads_as_localhost_R6(api: Api) -> None:
    db = await api.database()
    made = await _import(api, db, phones=["+49 30 1234567"])
    got = await api.read(f"/v1/profiles/{made['profile_id']}", made["consistency_token"])
    assert got.json()["email"] == f"{made['profile_id']}@localhost"
    assert got.json()["tabs"]["contact"] == {
        "email": f"{made['profile_id']}@localhost",
        "phones": ["+49301234567"],
    }


async def test_phone_identifies_and_finds_the_profile_R6(api: Api) -> None:
    db = await api.database()
    made = await _import(api, db, phones=["+49 (30) 1234567"])
    same = await _import(api, db, expect=200, phones=["0049301234567"], email="p@example.com")
    assert same["profile_id"] == made["profile_id"]
    got = await api.read(
        f"/v1/databases/{db}/profiles/by-phone/+49301234567", same["consistency_token"]
    )
    assert got.json()["email"] == "p@example.com"


async def test_unique_custom_field_identifies_the_profile_R6(api: Api) -> None:
    db = await api.database(card={"type": "line", "unique": True})
    made = await _import(api, db, custom={"card": "C-1"})
    same = await _import(api, db, expect=200, custom={"card": "C-1"}, email="c@example.com")
    assert same["profile_id"] == made["profile_id"]


async def test_a_unique_custom_field_finds_the_profile_in_its_canonical_form_R6(api: Api) -> None:
    db = await api.database(
        card={"type": "line", "unique": True},
        member={"type": "number", "unique": True},
        plain={"type": "line"},
    )
    made = await _import(api, db, custom={"card": "C-9", "member": 7, "plain": "p"})
    token = {"Consistency-Token": made["consistency_token"]}
    base = f"/v1/databases/{db}/profiles/by-field"
    by_card = await api.client.get(f"{base}/card/C-9", headers=token)
    assert by_card.status_code == 200, by_card.text
    assert by_card.json()["profile_id"] == made["profile_id"]
    by_number = await api.client.get(f"{base}/member/007", headers=token)  # a Number: 7
    assert by_number.json()["profile_id"] == made["profile_id"]
    assert (await api.client.get(f"{base}/card/C-10")).status_code == 404
    not_unique = await api.client.get(f"{base}/plain/p")
    assert (not_unique.status_code, not_unique.json()["errors"][0]["rule"]) == (
        422,
        "field_not_unique",
    )
    bad = await api.client.get(f"{base}/member/seven")
    assert (bad.status_code, bad.json()["errors"][0]["rule"]) == (422, "number_format")


async def test_two_identifiers_of_two_profiles_are_a_conflict_R6(api: Api) -> None:
    db = await api.database()
    await _import(api, db, email="a@example.com")
    await _import(api, db, phones=["+4930111111"])
    before = await _events(api)
    clash = await api.client.post(
        f"/v1/databases/{db}/profiles", json={"email": "a@example.com", "phones": ["+4930111111"]}
    )
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["rule"] == "identity_conflict"
    assert sorted(clash.json()["errors"][0]["value"]) == ["email", "phone"]
    assert await _events(api) == before


async def test_concurrent_imports_of_one_new_email_make_one_profile_R6(api: Api) -> None:
    db = await api.database()
    results = await asyncio.gather(
        *(
            api.client.post(
                f"/v1/databases/{db}/profiles",
                json={"email": "race@example.com", "fields": {"first_name": f"N{n}"}},
            )
            for n in range(40)
        )
    )
    assert all(r.status_code in (200, 201) for r in results), [r.text for r in results]
    assert len({r.json()["profile_id"] for r in results}) == 1
    assert sum(r.json()["created"] for r in results) == 1
    rows = await api.fetch("SELECT count(*) AS n FROM ingest.profiles WHERE database_id = $1", db)
    assert rows[0]["n"] == 1


async def test_batch_gives_a_result_per_item_and_rejects_only_bad_ones(api: Api) -> None:
    db = await api.database(visits={"type": "number"})
    items = [
        {"email": "b1@example.com"},
        {"email": "not-an-email"},
        {"email": "B1@example.com", "custom": {"visits": 3}},
        {"custom": {"visits": "many"}},
        {"profile_id": "00000000-0000-0000-0000-000000000001"},
    ]
    response = await api.client.post(f"/v1/databases/{db}/profiles:batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["outcome"] for r in body["results"]] == [
        "created",
        "rejected",
        "updated",
        "rejected",
        "rejected",
    ]
    assert body["results"][0]["profile_id"] == body["results"][2]["profile_id"]
    assert body["results"][1]["errors"][0]["rule"] == "email_syntax"
    assert body["results"][4]["errors"][0]["rule"] == "profile_not_found"
    assert (body["created"], body["updated"], body["rejected"]) == (1, 1, 3)
    got = await api.read(
        f"/v1/profiles/{body['results'][0]['profile_id']}", body["consistency_token"]
    )
    assert got.json()["custom"] == {"visits": 3}


async def test_a_422_names_shape_errors_and_rule_errors_together_R3(api: Api) -> None:
    """Issue 3: every wrong value of the request, not only the first kind found."""
    db = await api.database(visits={"type": "number"})
    before = await _events(api)
    bad = await api.client.post(
        f"/v1/databases/{db}/profiles",
        json={"email": "not-an-email", "nickname": "x", "custom": {"visits": "many"}},
    )
    assert bad.status_code == 422
    assert {(e["field"], e["rule"]) for e in bad.json()["errors"]} == {
        ("nickname", "extra_forbidden"),
        ("email", "email_syntax"),
        ("custom.visits", "number_format"),
    }
    assert await _events(api) == before  # nothing written


async def test_a_batch_item_of_the_wrong_shape_rejects_only_itself(api: Api) -> None:
    """API.md: one bad item does not reject the others, whatever is wrong with it."""
    db = await api.database()
    items: list[object] = [
        {"email": "shape1@example.com"},
        {"status": "asleep"},  # not one of the seven
        {"nickname": "x"},  # not a key of an item
        {"profile_id": "not-a-uuid"},
        "not an object",
        {"email": "shape2@example.com", "phones": ["+4930111222"]},
    ]
    response = await api.client.post(f"/v1/databases/{db}/profiles:batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["index"] for r in body["results"]] == list(range(6))
    assert [r["outcome"] for r in body["results"]] == [
        "created", "rejected", "rejected", "rejected", "rejected", "created",
    ]  # fmt: skip
    assert body["results"][1]["errors"][0]["field"] == "status"
    assert body["results"][2]["errors"][0] == {
        "field": "nickname",
        "rule": "extra_forbidden",
        "value": "x",
    }
    assert body["results"][3]["errors"][0]["field"] == "profile_id"
    assert (body["created"], body["updated"], body["rejected"]) == (2, 0, 4)
    got = await api.read(
        f"/v1/profiles/{body['results'][5]['profile_id']}", body["consistency_token"]
    )
    assert got.json()["phones"] == ["+4930111222"]
    envelope = await api.client.post(
        f"/v1/databases/{db}/profiles:batch", json={"items": [], "extra": 1}
    )
    assert envelope.status_code == 422  # the envelope itself is still checked as a whole
    empty = await api.client.post(f"/v1/databases/{db}/profiles:batch", json={"items": []})
    assert empty.status_code == 422
    assert empty.json()["errors"] == [{"field": "items", "rule": "too_short", "value": []}]
    nothing = await api.client.post(
        f"/v1/databases/{db}/profiles:batch",
        json={"items": [{"status": "asleep"}, {"email": "not-an-email"}]},
    )
    assert nothing.status_code == 422  # nothing written: a problem document naming each error
    assert [(e["field"], e["rule"]) for e in nothing.json()["errors"]] == [
        ("items.0.status", "literal_error"),
        ("items.1.email", "email_syntax"),
    ]


async def test_r3_a_batch_item_of_the_wrong_shape_lists_its_rule_errors_too(api: Api) -> None:
    """Issue 3: a rejected item names its shape errors and the rules its other parts break."""
    db = await api.database(visits={"type": "number"})
    mixed = {"nickname": "x", "email": "not-an-email", "custom": {"visits": "many"}}
    before = await _events(api)
    response = await api.client.post(
        f"/v1/databases/{db}/profiles:batch",
        json={"items": [{"email": "batch-ok@example.com"}, mixed]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["outcome"] for r in body["results"]] == ["created", "rejected"]
    assert {(e["field"], e["rule"]) for e in body["results"][1]["errors"]} == {
        ("nickname", "extra_forbidden"),
        ("email", "email_syntax"),
        ("custom.visits", "number_format"),
    }
    assert await _events(api) == before + 1  # the good item only
    nothing = await api.client.post(
        f"/v1/databases/{db}/profiles:batch",
        json={
            "items": [mixed, {"status": "asleep", "email": "never@example.com", "phones": ["12"]}]
        },
    )
    assert nothing.status_code == 422
    assert {(e["field"], e["rule"]) for e in nothing.json()["errors"]} == {
        ("items.0.nickname", "extra_forbidden"),
        ("items.0.email", "email_syntax"),
        ("items.0.custom.visits", "number_format"),
        ("items.1.status", "literal_error"),
        ("items.1.phones", "phone_e164"),
    }
    assert await _events(api) == before + 1
    claims = await api.fetch("SELECT kind, value FROM ingest.identities WHERE database_id = $1", db)
    assert [tuple(c) for c in claims] == [("email", "batch-ok@example.com")]  # no rejected claim


async def test_oversized_requests_are_refused_before_parsing(api: Api) -> None:
    db = await api.database()
    many: dict[str, list[dict[str, object]]] = {"items": [{} for _ in range(1001)]}
    too_many = await api.client.post(f"/v1/databases/{db}/profiles:batch", json=many)
    assert too_many.status_code == 413
    assert too_many.headers["content-type"] == "application/problem+json"
    huge = b'{"items": [' + b'{"email": "x@example.com"},' * 200_000 + b"{}]}"
    too_big = await api.client.post(
        f"/v1/databases/{db}/profiles:batch",
        content=huge,
        headers={"Content-Type": "application/json"},
    )
    assert too_big.status_code == 413
    assert "limit" in too_big.json()["detail"]


async def test_functional_updates_R3(api: Api) -> None:
    db = await api.database(
        visits={"type": "number"}, bought={"type": "tags"}, note={"type": "line"}
    )
    made = await _import(
        api, db, custom={"visits": 1, "bought": ["a", "b"], "note": "n"}, fields={"city": "Oslo"}
    )
    pid = made["profile_id"]
    patch = await api.client.patch(
        f"/v1/profiles/{pid}",
        json={
            "increment": {"visits": 4},
            "tags_add": {"bought": ["c", "a"]},
            "tags_remove": {"bought": ["b"]},
            "custom": {"note": None},
            "fields": {"first_name": "Kim", "city": None},
        },
    )
    assert patch.status_code == 200, patch.text
    got = await api.read(f"/v1/profiles/{pid}", patch.json()["consistency_token"])
    assert got.json()["custom"] == {"visits": 5, "bought": ["a", "c"]}
    assert got.json()["fields"] == {"first_name": "Kim"}
    wrong = await api.client.patch(
        f"/v1/profiles/{pid}", json={"increment": {"note": 1}, "tags_add": {"visits": ["x"]}}
    )
    assert wrong.status_code == 422
    assert {e["field"] for e in wrong.json()["errors"]} == {"increment.note", "tags_add.visits"}


async def test_increments_stay_in_range_and_tag_edits_follow_the_tags_rules_R3(
    api: Api,
) -> None:
    """An increment that would take a Number past a signed 64-bit integer, a boolean amount,
    a tag holding a separator: each a 422 naming it, nothing written. Two increments that
    each fit but overflow together (the second checked before the first is projected) stop
    at the bound when folded: the write is never buried as a dead letter."""
    db = await api.database(visits={"type": "number"}, score={"type": "float"}, tg={"type": "tags"})
    top = 2**63 - 1
    made = await _import(api, db, custom={"visits": top, "score": 1e308})
    pid, token = made["profile_id"], made["consistency_token"]
    await api.read(f"/v1/profiles/{pid}", token)
    before = await _events(api)
    for body, error in (
        ({"increment": {"visits": 1}}, ("increment.visits", "number_range", 1)),
        ({"increment": {"score": 1e308}}, ("increment.score", "float_range", 1e308)),
        ({"increment": {"visits": True}}, ("increment.visits", "number_format", True)),
        ({"tags_add": {"tg": ["ok", "a;b"]}}, ("tags_add.tg", "tags_format", "a;b")),
    ):
        refused = await api.client.patch(f"/v1/profiles/{pid}", json=body)
        assert refused.status_code == 422, refused.text
        assert [tuple(e.values()) for e in refused.json()["errors"]] == [error]
    assert await _events(api) == before  # nothing written
    tagged = await api.client.patch(f"/v1/profiles/{pid}", json={"tags_add": {"tg": [" x ", ""]}})
    assert tagged.status_code == 200, tagged.text
    # near the top, two increments in a row: each fits the value the write API can see
    lowered = await api.client.patch(f"/v1/profiles/{pid}", json={"increment": {"visits": -2}})
    got = await api.read(f"/v1/profiles/{pid}", lowered.json()["consistency_token"])
    assert got.json()["custom"]["visits"] == top - 2
    raced = [
        await api.client.patch(f"/v1/profiles/{pid}", json={"increment": {"visits": 2}})
        for _ in range(2)
    ]
    assert raced[0].status_code == 200
    last = next((r for r in reversed(raced) if r.status_code == 200), raced[0])
    got = await api.read(f"/v1/profiles/{pid}", last.json()["consistency_token"])
    assert got.json()["custom"]["visits"] == top  # saturated, or the second was refused
    assert got.json()["custom"]["tg"] == ["x"]
    dead = await api.fetch("SELECT count(*) AS n FROM read_models.dead_letters")
    assert dead[0]["n"] == 0


async def test_r3_patch_lists_shape_and_rule_errors_together(api: Api) -> None:
    """Issue 3: one 422 names the shape errors of an update and the rules its well-shaped parts
    break (a Number that is not one next to an unknown key: both), and nothing is written."""
    db = await api.database(
        visits={"type": "number"}, bought={"type": "tags"}, note={"type": "line"}
    )
    made = await _import(api, db, email="patch-shape@example.com", custom={"visits": 1})
    pid = made["profile_id"]
    before = await _events(api)
    bad = await api.client.patch(
        f"/v1/profiles/{pid}",
        json={
            "nickname": "x",  # not a key of an update
            "increment": {"visits": "many", "note": 1},  # a shape error next to a rule error
            "tags_add": {"bought": "not-a-list", "visits": ["x"]},
            "custom": {"visits": "1.5", "ghost": 1},
            "fields": {"birthday": "yesterday"},
            "email": "patch-new@example.com",  # valid: claimed only when the update is written
            "phones_add": ["+4930111223", "12"],
        },
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert {(e["field"], e["rule"]) for e in bad.json()["errors"]} == {
        ("nickname", "extra_forbidden"),
        ("increment.visits", "number_format"),  # checked against the field's type
        ("tags_add.bought", "list_type"),
        ("increment.note", "increment_needs_number_or_float"),
        ("tags_add.visits", "tags_add_needs_tags"),
        ("custom.visits", "number_format"),
        ("custom.ghost", "unknown_field"),
        ("fields.birthday", "date_format"),
        ("phones_add", "phone_e164"),
    }
    assert await _events(api) == before  # nothing written
    got = await api.read(f"/v1/profiles/{pid}", made["consistency_token"])
    assert (got.json()["version"], got.json()["custom"]) == (1, {"visits": 1})
    claims = await api.fetch("SELECT kind, value FROM ingest.identities WHERE database_id = $1", db)
    assert [tuple(c) for c in claims] == [("email", "patch-shape@example.com")]  # nothing claimed
    missing = await api.client.patch(f"/v1/profiles/{uuid4()}", json={"custom": {"visits": "x"}})
    assert missing.status_code == 404  # a body of the right shape: no such profile comes first
    unchecked = await api.client.patch(f"/v1/profiles/{uuid4()}", json={"nickname": "x"})
    assert unchecked.status_code == 422  # the wrong shape, and no database to check the rest
    assert [(e["field"], e["rule"]) for e in unchecked.json()["errors"]] == [
        ("nickname", "extra_forbidden")
    ]
    assert await _events(api) == before


async def test_email_change_frees_the_old_address_R6(api: Api) -> None:
    db = await api.database()
    made = await _import(api, db, email="old@example.com")
    pid = made["profile_id"]
    patch = await api.client.patch(f"/v1/profiles/{pid}", json={"email": "New@example.com"})
    assert patch.status_code == 200
    got = await api.read(f"/v1/profiles/{pid}", patch.json()["consistency_token"])
    assert got.json()["email"] == "new@example.com"
    fresh = await _import(api, db, email="old@example.com")
    assert fresh["created"] is True
    assert fresh["profile_id"] != pid
    taken = await api.client.patch(f"/v1/profiles/{pid}", json={"email": "old@example.com"})
    assert taken.status_code == 409


async def test_status_change_and_the_suppression_list_R7_R8(api: Api) -> None:
    shop, blog = await api.database(), await api.database()
    made = await _import(api, shop, email="bounce@example.com")
    pid = made["profile_id"]
    put = await api.client.put(f"/v1/profiles/{pid}/status", json={"status": "hard_bounced"})
    assert put.status_code == 200
    got = await api.read(f"/v1/profiles/{pid}", put.json()["consistency_token"])
    assert got.json()["status"] == "hard_bounced"
    assert (await api.client.get("/v1/suppressions/Bounce@example.com")).status_code == 204

    elsewhere = await _import(api, blog, email="bounce@example.com", status="subscribed")
    assert elsewhere["suppressed"] is True
    other = await api.read(
        f"/v1/profiles/{elsewhere['profile_id']}", elsewhere["consistency_token"]
    )
    assert other.json()["status"] == "hard_bounced"  # R8: an import cannot make it sendable

    assert (await api.client.delete("/v1/suppressions/bounce@example.com")).status_code == 204
    assert (await api.client.get("/v1/suppressions/bounce@example.com")).status_code == 404
    back = await _import(api, blog, expect=200, email="bounce@example.com", status="subscribed")
    assert back["suppressed"] is False
    now = await api.read(f"/v1/profiles/{back['profile_id']}", back["consistency_token"])
    assert now.json()["status"] == "subscribed"
    bad = await api.client.put(f"/v1/profiles/{pid}/status", json={"status": "asleep"})
    assert bad.status_code == 422


async def test_no_path_but_removal_makes_a_suppressed_address_sendable_R8(api: Api) -> None:
    """Not an import naming the profile without its address, not a status change, not moving
    another profile onto the address: only DELETE /v1/suppressions/{email}."""
    db = await api.database()
    made = await _import(api, db, email="stuck@example.com")
    pid = made["profile_id"]
    put = await api.client.put(f"/v1/profiles/{pid}/status", json={"status": "hard_bounced"})
    await api.read(f"/v1/profiles/{pid}", put.json()["consistency_token"])
    by_id = await _import(api, db, expect=200, profile_id=pid, status="subscribed")
    assert by_id["suppressed"] is True
    got = await api.read(f"/v1/profiles/{pid}", by_id["consistency_token"])
    assert got.json()["status"] == "hard_bounced"
    refused = await api.client.put(f"/v1/profiles/{pid}/status", json={"status": "subscribed"})
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["rule"] == "address_suppressed"
    # the address stays on the list when its profile moves to another one, and whoever
    # takes it next is not sendable either
    moved = await api.client.patch(f"/v1/profiles/{pid}", json={"email": "moved@example.com"})
    assert moved.status_code == 200, moved.text
    third = await _import(api, db, email="third@example.com")
    onto = await api.client.patch(
        f"/v1/profiles/{third['profile_id']}", json={"email": "stuck@example.com"}
    )
    assert onto.status_code == 200, onto.text
    now = await api.read(f"/v1/profiles/{third['profile_id']}", onto.json()["consistency_token"])
    assert now.json()["status"] == "hard_bounced"
    assert (await api.client.delete("/v1/suppressions/stuck@example.com")).status_code == 204
    allowed = await api.client.put(
        f"/v1/profiles/{third['profile_id']}/status", json={"status": "subscribed"}
    )
    assert allowed.status_code == 200


async def test_delete_removes_the_profile_and_frees_its_identities_R26(api: Api) -> None:
    db = await api.database()
    made = await _import(api, db, email="gone@example.com", phones=["+4930999999"])
    pid = made["profile_id"]
    await api.read(f"/v1/profiles/{pid}", made["consistency_token"])
    deleted = await api.client.delete(f"/v1/profiles/{pid}")
    assert deleted.status_code == 200
    token = deleted.json()["consistency_token"]
    assert (
        await api.client.get(f"/v1/profiles/{pid}", headers={"Consistency-Token": token})
    ).status_code == 404
    by_email = await api.client.get(f"/v1/databases/{db}/profiles/by-email/gone@example.com")
    assert by_email.status_code == 404
    assert (await api.client.delete(f"/v1/profiles/{pid}")).status_code == 404
    assert (await api.client.patch(f"/v1/profiles/{pid}", json={})).status_code == 404
    again = await _import(api, db, email="gone@example.com", phones=["+4930999999"])
    assert again["created"] is True
    assert again["profile_id"] != pid  # R4: never reused
    reuse = await api.client.post(f"/v1/databases/{db}/profiles", json={"profile_id": pid})
    assert reuse.status_code == 404
    rows = await api.fetch(
        "SELECT count(*) AS n FROM read_models.profiles WHERE profile_id = $1", UUID(pid)
    )
    assert rows[0]["n"] == 0


async def test_export_is_one_document_with_everything_R27(api: Api) -> None:
    db = await api.database(visits={"type": "number"})
    made = await _import(
        api, db, email="me@example.com", fields={"first_name": "Mo"}, custom={"visits": 2}
    )
    await api.read(f"/v1/profiles/{made['profile_id']}", made["consistency_token"])
    export = await api.client.get(f"/v1/profiles/{made['profile_id']}/export")
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    document = export.json()
    assert document["profile"]["email"] == "me@example.com"
    stored = document["read_models"]["profiles"]
    assert stored["custom"] == {"visits": 2}
    assert stored["fields"] == {"first_name": "Mo"}


async def test_every_route_needs_a_key_with_its_permission_R28(api: Api) -> None:
    db = await api.database()
    made = await _import(api, db, email="k@example.com")
    pid = made["profile_id"]
    anonymous = {"Authorization": ""}
    as_writer = await api.key("write")
    assert (await api.client.get(f"/v1/profiles/{pid}", headers=anonymous)).status_code == 401
    assert (await api.client.post("/v1/databases", json={}, headers=anonymous)).status_code == 401
    assert (await api.client.get(f"/v1/profiles/{pid}", headers=as_writer)).status_code == 403
    assert (await api.client.delete(f"/v1/profiles/{pid}", headers=as_writer)).status_code == 403
    assert (
        await api.client.post(
            "/v1/databases", json={"database_id": "w", "name": "w"}, headers=as_writer
        )
    ).status_code == 403
    ok = await api.client.post(f"/v1/databases/{db}/profiles", json={}, headers=as_writer)
    assert ok.status_code == 201


async def test_reg_ip_locates_registration_unless_set_by_hand_R21(api: Api) -> None:
    db = await api.database()
    located = await _import(api, db, fields={"reg_ip": "81.2.69.142"})
    manual = await _import(api, db, fields={"reg_ip": "81.2.69.142", "reg_city": "Leeds"})
    off = await _import(api, db, fields={"reg_ip": "81.2.69.142"}, geo=False)
    unknown = await _import(api, db, fields={"reg_ip": "10.0.0.1"})
    reg = {}
    for name, made in (
        ("located", located),
        ("manual", manual),
        ("off", off),
        ("unknown", unknown),
    ):
        got = await api.read(f"/v1/profiles/{made['profile_id']}", made["consistency_token"])
        reg[name] = got.json()["tabs"]["reg"]
    assert reg["located"] == {"reg_ip": "81.2.69.142", "reg_country": "GB", "reg_city": "London"}
    assert reg["manual"] == {"reg_ip": "81.2.69.142", "reg_country": "GB", "reg_city": "Leeds"}
    assert reg["off"] == {"reg_ip": "81.2.69.142"}
    assert reg["unknown"] == {"reg_ip": "10.0.0.1"}


async def test_import_mode_is_recorded_R18(api: Api) -> None:
    db = await api.database()
    manual = await _import(api, db, email="m@example.com", mode="manual")
    got = await api.read(f"/v1/profiles/{manual['profile_id']}", manual["consistency_token"])
    assert got.json()["import_mode"] == "manual"
    bad = await api.client.post(f"/v1/databases/{db}/profiles", json={"mode": "file"})
    assert bad.status_code == 422  # `file` belongs to file imports


async def test_batch_items_choose_their_own_geo_R21(api: Api) -> None:
    db = await api.database()
    items = [
        {"email": "on@example.com", "fields": {"reg_ip": "81.2.69.142"}},
        {"email": "off@example.com", "fields": {"reg_ip": "81.2.69.142"}, "geo": False},
    ]
    response = await api.client.post(f"/v1/databases/{db}/profiles:batch", json={"items": items})
    body = response.json()
    on, off = (r["profile_id"] for r in body["results"])
    located = await api.read(f"/v1/profiles/{on}", body["consistency_token"])
    plain = await api.read(f"/v1/profiles/{off}", body["consistency_token"])
    assert located.json()["tabs"]["reg"]["reg_country"] == "GB"
    assert plain.json()["tabs"]["reg"] == {"reg_ip": "81.2.69.142"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/databases/{db}/profiles"),
        ("PATCH", "/v1/profiles/{pid}"),
        ("POST", "/v1/events"),
        ("POST", "/v1/databases"),
        ("POST", "/v1/databases/{db}/fields"),
        ("POST", "/v1/profiles/{pid}/subscriptions"),
    ],
)
async def test_a_body_that_is_not_json_is_one_named_error(api: Api, method: str, path: str) -> None:
    """Whoever parses the body, a client gets the same 422: `body` breaks `json_invalid`."""
    db = await api.database()
    created = await _import(api, db, email="json@example.com")
    url = path.format(db=db, pid=created["profile_id"])
    response = await api.client.request(
        method, url, content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [
        ("body", "json_invalid")
    ]
