"""Public events in, the history timeline out, over real HTTP and PostgreSQL (R18-R21, R26)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.identity import md5_id, xxh_id
from tests.api import Api

pytestmark = pytest.mark.postgres


def public(
    kind: str, profile: dict[str, Any], at: datetime | None = None, **data: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": kind,
        "source": "/tests/upstream",
        "profile": profile,
        "data": data,
    }
    if at is not None:
        event["time"] = at.isoformat()
    return event


async def post(api: Api, *events: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post("/v1/events", json={"events": list(events)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def history(api: Api, pid: str, token: str, **params: Any) -> dict[str, Any]:
    response = await api.client.get(
        f"/v1/profiles/{pid}/history", params=params, headers={"Consistency-Token": token}
    )
    assert response.status_code == 200, response.text
    assert "Consistency" not in response.headers
    body: dict[str, Any] = response.json()
    return body


async def _profile(api: Api, **body: Any) -> tuple[str, str, str]:
    db = await api.database()
    made = await api.client.post(f"/v1/databases/{db}/profiles", json=body)
    assert made.status_code == 201, made.text
    return db, made.json()["profile_id"], made.json()["consistency_token"]


async def test_default_period_is_the_last_seven_days_R19(api: Api) -> None:
    _, pid, _ = await _profile(api, email="week@example.com")
    now = datetime.now(UTC)
    ref = {"profile_id": pid}
    posted = await post(
        api,
        public("campaign.sent", ref, now - timedelta(days=8), campaign_id="old"),
        public("campaign.sent", ref, now - timedelta(days=6, hours=23), campaign_id="inside"),
        public("campaign.sent", ref, now - timedelta(hours=1), campaign_id="recent"),
    )
    recent = await history(api, pid, posted["consistency_token"], kind="campaign")
    assert [e["summary"]["campaign_id"] for e in recent["entries"]] == ["recent", "inside"]
    everything = await history(
        api,
        pid,
        posted["consistency_token"],
        kind="campaign",
        **{"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()},
    )
    assert [e["summary"]["campaign_id"] for e in everything["entries"]] == [
        "recent",
        "inside",
        "old",
    ]


async def test_every_family_lands_in_the_timeline_with_its_kind_R18(api: Api) -> None:
    _, pid, _ = await _profile(api, email="all@example.com")
    _, other, _ = await _profile(api)
    ref = {"profile_id": pid}
    posted = await post(
        api,
        public("campaign.delivered", ref, campaign_id="c"),
        public("campaign.clicked", ref, campaign_id="c", url="https://shop.example/x"),
        public("campaign.unsubscribe_clicked", ref, campaign_id="c"),
        public("pixel.hit", ref, goal="checkout", value=10.5, pixel_data={"cart": {"n": 2}}),
        public("promo_code.attached", ref, code="SPRING-10"),
        public("segment.entered", ref, segment_id="vip", manual=True),
        public("trigger.sent", ref, trigger_id="welcome", manual=True),
        public("scenario.finished", ref, scenario_id="onboarding", result="converted"),
        public("order.recorded", ref, order_id="o1", status="paid", currency="EUR", total=5.0,
               items=[{"sku": "a", "quantity": 1, "price": 5.0}]),
        public("relation.added", ref, relation_type="like", other_profile_id=other),
        public("form.submitted", ref, form_id="f1", data={"size": "M"}),
    )  # fmt: skip
    assert {r["outcome"] for r in posted["results"]} == {"accepted"}
    page = await history(api, pid, posted["consistency_token"])
    kinds = {e["kind"] for e in page["entries"]}
    assert kinds == {
        "import", "campaign", "unsub", "pixel", "promo", "segment", "trigger", "scenario",
        "order", "relation", "form",
    }  # fmt: skip
    pixel = next(e for e in page["entries"] if e["kind"] == "pixel")
    assert pixel["summary"]["pixel_data"] == {"cart": {"n": 2}}
    only = await history(api, pid, posted["consistency_token"], kind=["pixel", "promo"])
    assert {e["kind"] for e in only["entries"]} == {"pixel", "promo"}
    bad = await api.client.get(f"/v1/profiles/{pid}/history", params={"kind": "weather"})
    assert bad.status_code == 422


async def test_cursor_paging_is_stable_under_concurrent_appends_R19(api: Api) -> None:
    _, pid, _ = await _profile(api)
    ref = {"profile_id": pid}
    base = datetime.now(UTC) - timedelta(hours=2)
    first = await post(
        api, *(public("campaign.opened", ref, base + timedelta(minutes=n), campaign_id=f"c{n}")
               for n in range(25))
    )  # fmt: skip
    token = first["consistency_token"]
    page1 = await history(api, pid, token, kind="campaign", limit=10)
    assert len(page1["entries"]) == 10
    later = await post(  # newer events arrive between the pages
        api, *(public("campaign.opened", ref, campaign_id=f"new{n}") for n in range(5))
    )
    page2 = await history(api, pid, later["consistency_token"], kind="campaign", limit=10,
                          cursor=page1["cursor"])  # fmt: skip
    page3 = await history(api, pid, later["consistency_token"], kind="campaign", limit=10,
                          cursor=page2["cursor"])  # fmt: skip
    seen = [e["summary"]["campaign_id"] for p in (page1, page2, page3) for e in p["entries"]]
    assert seen == [f"c{n}" for n in range(24, -1, -1)]  # no duplicate, no gap, newest first
    assert page3["cursor"] is None
    garbage = await api.client.get(f"/v1/profiles/{pid}/history", params={"cursor": "%%"})
    assert garbage.status_code == 400


async def test_a_double_publish_appears_once_R18(api: Api) -> None:
    _, pid, _ = await _profile(api)
    event = public("campaign.read", {"profile_id": pid}, campaign_id="twice")
    await post(api, event)
    again = await post(api, event)
    page = await history(api, pid, again["consistency_token"], kind="campaign")
    assert [e["summary"]["campaign_id"] for e in page["entries"]] == ["twice"]


async def test_profiles_are_found_by_any_identifier_R5_R6(api: Api) -> None:
    db, pid, _ = await _profile(api, email="Ref@Example.com", phones=["+4930777777"])
    posted = await post(
        api,
        public("trigger.sent", {"md5_id": md5_id(uuid.UUID(pid)).upper()}, trigger_id="a"),
        public("trigger.sent", {"xxh_id": xxh_id(uuid.UUID(pid))}, trigger_id="b"),
        public("trigger.sent", {"database_id": db, "email": " ref@example.COM"}, trigger_id="c"),
        public("trigger.sent", {"database_id": db, "phone": "0049 30 777777"}, trigger_id="d"),
        public("trigger.sent", {"database_id": db, "email": "nobody@example.com"}, trigger_id="e"),
        public("trigger.sent", {"profile_id": pid}, trigger_id=""),
        public("relation.added", {"profile_id": pid}, relation_type="like",
               other_profile_id=str(uuid.uuid4())),
    )  # fmt: skip
    results = posted["results"]
    assert [r["outcome"] for r in results] == ["accepted"] * 4 + ["rejected"] * 3
    assert {r["profile_id"] for r in results[:4]} == {pid}
    assert results[4]["errors"] == [
        {"field": "profile", "rule": "profile_not_found", "value": "email"}
    ]
    assert results[5]["errors"][0]["field"] == "data.trigger_id"
    assert results[6]["errors"][0]["field"] == "data.other_profile_id"
    unresolvable = await api.client.post(
        "/v1/events", json={"events": [public("trigger.sent", {"email": "x@example.com"})]}
    )
    assert unresolvable.status_code == 422  # email without a database


async def test_opens_clicks_and_pixels_set_the_latest_action_location_R21(api: Api) -> None:
    _, pid, _ = await _profile(api, fields={"city": "Manual City"})
    posted = await post(
        api, public("campaign.opened", {"profile_id": pid}, campaign_id="c", ip="81.2.69.142")
    )
    got = await api.read(f"/v1/profiles/{pid}", posted["consistency_token"])
    tracked = got.json()["tabs"]["tracked"]
    assert tracked["country"] == "GB"
    assert tracked["city"] == "Manual City"  # a value a person set stays
    assert tracked["latest_ip"] == "81.2.69.142"
    page = await history(api, pid, posted["consistency_token"], kind="campaign")
    assert page["entries"][0]["summary"]["location"]["country"] == "GB"


async def test_deleting_a_profile_deletes_its_history_R26(api: Api) -> None:
    _, pid, _ = await _profile(api)
    await post(api, public("segment.entered", {"profile_id": pid}, segment_id="s"))
    deleted = await api.client.delete(f"/v1/profiles/{pid}")
    await api.client.get(
        f"/v1/profiles/{pid}", headers={"Consistency-Token": deleted.json()["consistency_token"]}
    )
    rows = await api.fetch(
        "SELECT count(*) AS n FROM read_models.history WHERE profile_id = $1", uuid.UUID(pid)
    )
    assert rows[0]["n"] == 0
