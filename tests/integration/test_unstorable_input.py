"""Input no read model can store is refused where it comes in, naming its place, and changes
nothing; the pixel keeps the hit (API.md errors, R18, R19, R27).

PostgreSQL's `text` cannot hold a NUL character, `jsonb` refuses its `\\u0000` escape: before,
one pixel hit carrying `%00` made a profile's history and export answer 500 for good, and a NUL
in an email, a name or a batch item was a 500 that took the whole batch with it. An event's
time outside what the folds can convert was accepted, then buried by the projector; a history
period reaching past year 1 or 9999 was a 500.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from domain.identity import xxh_id
from tests.api import Api
from tests.events import history, new_profile, post, public

pytestmark = pytest.mark.postgres

NUL = "\x00"


def _nul_errors(body: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(e["field"], e["rule"], e["value"]) for e in body["errors"]]


async def test_a_pixel_hit_with_a_nul_is_kept_and_the_timeline_stays_readable_R18_R27(
    api: Api,
) -> None:
    _, pid, token = await new_profile(api)
    hit = await api.client.get(
        f"/px/{xxh_id(uuid.UUID(pid))}",
        params={"goal": f"a{NUL}b", "x": NUL, "data": '{"k": "c\\u0000d"}'},
        headers={"Authorization": ""},
    )
    assert hit.status_code == 200
    assert hit.content[:6] == b"GIF89a"
    for _ in range(100):  # recorded after the response
        page = await history(api, pid, token, kind="pixel")
        if page["entries"]:
            break
        await asyncio.sleep(0.05)
    summary = page["entries"][0]["summary"]
    assert summary["goal"] == "a\ufffdb"
    assert summary["pixel_data"] == {"k": "c\ufffdd", "x": "\ufffd"}
    exported = await api.client.get(f"/v1/profiles/{pid}/export")
    assert exported.status_code == 200


async def test_events_with_a_nul_are_rejected_each_naming_its_place_the_others_go_on(
    api: Api,
) -> None:
    db, pid, _ = await new_profile(api)
    ref = {"profile_id": pid}
    body = await post(
        api,
        public("campaign.sent", ref, campaign_id=f"c{NUL}x"),
        public("form.submitted", ref, form_id="f", data={"k": f"a{NUL}b"}),
        public("campaign.sent", {"database_id": db, "email": f"a{NUL}@example.com"}),
        public("segment.entered", ref, segment_id="fine"),
    )
    results = body["results"]
    assert [r["outcome"] for r in results] == ["rejected"] * 3 + ["accepted"]
    assert [_nul_errors(r) for r in results[:3]] == [
        [("data.campaign_id", "nul_character", None)],
        [("data.data.k", "nul_character", None)],
        [("profile.email", "nul_character", None)],
    ]
    page = await history(api, pid, body["consistency_token"])
    assert [e["kind"] for e in page["entries"]] == ["segment", "import"]
    assert (await api.client.get(f"/v1/profiles/{pid}/export")).status_code == 200


async def test_a_batch_item_with_a_nul_rejects_only_itself(api: Api) -> None:
    db = await api.database()
    got = await api.client.post(
        f"/v1/databases/{db}/profiles:batch",
        json={"items": [{"email": "fine@example.com"}, {"email": f"n{NUL}ul@example.com"}]},
    )
    assert got.status_code == 200, got.text
    first, second = got.json()["results"]
    assert first["outcome"] == "created"
    assert second["outcome"] == "rejected"
    assert _nul_errors(second) == [("email", "nul_character", None)]
    found = await api.client.get(
        f"/v1/databases/{db}/profiles/by-email/fine@example.com",
        headers={"Consistency-Token": got.json()["consistency_token"]},
    )
    assert found.status_code == 200


async def test_a_nul_in_a_body_path_or_query_is_a_422_and_writes_nothing(api: Api) -> None:
    db, pid, _ = await new_profile(api)
    before = await api.fetch("SELECT count(*) AS n FROM eventlog.events")
    answers = {
        "import": await api.client.post(
            f"/v1/databases/{db}/profiles", json={"email": f"n{NUL}@example.com"}
        ),
        "patch": await api.client.patch(f"/v1/profiles/{pid}", json={"fields": {NUL: "x"}}),
        "database": await api.client.post(
            "/v1/databases", json={"database_id": "nul_db", "name": f"N{NUL}ame"}
        ),
        "lookup": await api.client.get(f"/v1/databases/{db}/profiles/by-email/%00@x.com"),
        "members": await api.client.get("/v1/segments/s%00g/members"),
        "query": await api.client.get(f"/v1/profiles/{pid}/history", params={"cursor": NUL}),
    }
    for name, got in answers.items():
        assert got.status_code == 422, (name, got.text)
        assert got.headers["content-type"] == "application/problem+json"
        assert {e["rule"] for e in got.json()["errors"]} == {"nul_character"}, name
        assert all(e["value"] is None for e in got.json()["errors"]), name  # never echoed
    assert _nul_errors(answers["import"].json()) == [("email", "nul_character", None)]
    assert _nul_errors(answers["patch"].json()) == [("fields.\\u0000", "nul_character", None)]
    assert _nul_errors(answers["database"].json()) == [("name", "nul_character", None)]
    assert _nul_errors(answers["lookup"].json()) == [("path", "nul_character", None)]
    assert _nul_errors(answers["query"].json()) == [("query.cursor", "nul_character", None)]
    assert await api.fetch("SELECT count(*) AS n FROM eventlog.events") == before


async def test_an_event_time_the_folds_cannot_hold_is_refused_at_intake_R18(api: Api) -> None:
    _, pid, _ = await new_profile(api)
    ref = {"profile_id": pid}
    events = [
        {**public("campaign.sent", ref, campaign_id="early"), "time": "0001-01-01T00:00:00+01:00"},
        {**public("campaign.sent", ref, campaign_id="late"), "time": "9999-12-31T23:59:59-01:00"},
        {**public("campaign.sent", ref, campaign_id="old"), "time": "1899-12-31T22:59:59-01:00"},
    ]
    got = await api.client.post("/v1/events", json={"events": events})
    assert got.status_code == 422, got.text
    assert [(e["field"], e["rule"]) for e in got.json()["errors"]] == [
        (f"events.{n}.time", "time_range") for n in range(3)
    ]


async def test_a_history_period_past_the_calendar_reads_to_its_ends_R19(api: Api) -> None:
    _, pid, token = await new_profile(api)
    for params in (
        {"to": "0001-01-07T23:59:59Z"},
        {"from": "0001-01-01T00:00:00+14:00"},
        {"to": "9999-12-31T23:59:59-14:00"},
        {"from": "0001-01-01T00:00:00+14:00", "to": "9999-12-31T23:59:59-14:00"},
    ):
        got = await api.client.get(
            f"/v1/profiles/{pid}/history", params=params, headers={"Consistency-Token": token}
        )
        assert got.status_code == 200, (params, got.text)
    everything = got.json()
    assert [e["kind"] for e in everything["entries"]] == ["import"]
    assert everything["since"].startswith("0001-01-01")
