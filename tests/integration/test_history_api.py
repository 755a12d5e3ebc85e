"""Public events in, the history timeline out, over real HTTP and PostgreSQL (R18-R21, R26)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.identity import md5_id, xxh_id
from tests.api import Api
from tests.events import history, new_profile, post, public

pytestmark = pytest.mark.postgres


async def test_default_period_is_the_last_seven_days_R19(api: Api) -> None:
    _, pid, _ = await new_profile(api, email="week@example.com")
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
    _, pid, _ = await new_profile(api, email="all@example.com")
    _, other, _ = await new_profile(api)
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
    _, pid, _ = await new_profile(api)
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
    assert garbage.json()["errors"] == [
        {"field": "cursor", "rule": "cursor_invalid", "value": None}
    ]
    token = await api.client.get(f"/v1/profiles/{pid}", headers={"Consistency-Token": "%%"})
    assert token.status_code == 400
    assert token.json()["errors"] == [
        {"field": "Consistency-Token", "rule": "token_invalid", "value": None}
    ]


async def test_a_double_publish_appears_once_R18(api: Api) -> None:
    _, pid, _ = await new_profile(api)
    event = public("campaign.read", {"profile_id": pid}, campaign_id="twice")
    await post(api, event)
    again = await post(api, event)
    page = await history(api, pid, again["consistency_token"], kind="campaign")
    assert [e["summary"]["campaign_id"] for e in page["entries"]] == ["twice"]


async def test_profiles_are_found_by_any_identifier_R5_R6(api: Api) -> None:
    db, pid, _ = await new_profile(api, email="Ref@Example.com", phones=["+4930777777"])
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


async def test_a_bad_event_is_rejected_alone_and_a_request_of_only_bad_ones_is_a_422_R18(
    api: Api,
) -> None:
    """Issue 5, bad input over HTTP: unknown type, wrong shape, broken data, no such profile."""
    _, pid, _ = await new_profile(api)
    ref = {"profile_id": pid}
    unknown = public("campaign.teleported", ref, campaign_id="c")
    shapeless = {**public("trigger.sent", ref, trigger_id="t"), "colour": "red"}
    broken = public("trigger.sent", ref, trigger_id="")
    nobody = public("trigger.sent", {"profile_id": str(uuid.uuid4())}, trigger_id="t")
    good = public("trigger.sent", ref, trigger_id="kept")
    mixed = await post(api, unknown, shapeless, good, broken, nobody)
    assert [r["outcome"] for r in mixed["results"]] == [
        "rejected", "rejected", "accepted", "rejected", "rejected",
    ]  # fmt: skip
    assert mixed["results"][0]["errors"][0]["field"] == "type"
    assert mixed["results"][1]["errors"][0] == {
        "field": "colour", "rule": "extra_forbidden", "value": "red",
    }  # fmt: skip
    page = await history(api, pid, mixed["consistency_token"], kind="trigger")
    assert [e["summary"]["trigger_id"] for e in page["entries"]] == ["kept"]
    alone = await api.client.post("/v1/events", json={"events": [unknown]})
    assert alone.status_code == 422
    assert alone.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in alone.json()["errors"]] == ["events.0.type"]
    later = {**good, "id": str(uuid.uuid4()), "schema_version": 9}  # a version we do not know
    versioned = await api.client.post("/v1/events", json={"events": [later]})
    assert versioned.status_code == 422
    assert versioned.json()["errors"][0]["rule"] == "unsupported_version"
    all_bad = await api.client.post("/v1/events", json={"events": [broken, nobody]})
    assert all_bad.status_code == 422
    assert [(e["field"], e["rule"]) for e in all_bad.json()["errors"]] == [
        ("events.0.data.trigger_id", "string_too_short"),
        ("events.1.profile", "profile_not_found"),
    ]
    again = await history(api, pid, mixed["consistency_token"], kind="trigger")
    assert len(again["entries"]) == 1  # nothing of the refused requests was appended


async def test_opens_clicks_and_pixels_set_the_latest_action_location_R21(api: Api) -> None:
    _, pid, _ = await new_profile(api, fields={"city": "Manual City"})
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


async def test_a_click_and_then_a_pixel_hit_each_move_the_latest_action_location_R21(
    api: Api,
) -> None:
    _, pid, _ = await new_profile(api)
    ref = {"profile_id": pid}
    clicked = await post(api, public("campaign.clicked", ref, campaign_id="c", ip="192.0.2.10"))
    got = await api.read(f"/v1/profiles/{pid}", clicked["consistency_token"])
    assert (got.json()["tabs"]["tracked"]["city"], got.json()["tabs"]["tracked"]["latest_ip"]) == (
        "Berlin",
        "192.0.2.10",
    )
    hit = await post(api, public("pixel.hit", ref, goal="buy", ip="203.0.113.99"))
    got = await api.read(f"/v1/profiles/{pid}", hit["consistency_token"])
    assert got.json()["tabs"]["tracked"]["city"] == "Tokyo"
    page = await history(api, pid, hit["consistency_token"], kind="pixel")
    assert page["entries"][0]["summary"]["location"]["country"] == "JP"
    sent = await post(api, public("campaign.sent", ref, campaign_id="c", ip="198.51.100.7"))
    got = await api.read(f"/v1/profiles/{pid}", sent["consistency_token"])
    assert got.json()["tabs"]["tracked"]["city"] == "Tokyo"  # a send is not the person's action


async def test_the_latest_action_is_the_latest_by_its_time_not_its_arrival_R21(
    api: Api,
) -> None:
    """An open from London now, then one from Tokyo dated two days ago that arrives later: the
    location stays London's, though both opens are folded and in the timeline."""
    _, pid, _ = await new_profile(api)
    ref = {"profile_id": pid}
    now = datetime.now(UTC)
    await post(api, public("campaign.opened", ref, now, campaign_id="c", ip="81.2.69.142"))
    late = await post(
        api,
        public("campaign.opened", ref, now - timedelta(days=2), campaign_id="c", ip="203.0.113.99"),
    )
    got = await api.read(f"/v1/profiles/{pid}", late["consistency_token"])
    tracked = got.json()["tabs"]["tracked"]
    assert (tracked["city"], tracked["latest_ip"]) == ("London", "81.2.69.142")
    assert got.json()["version"] == 3  # the import and both opens
    page = await history(api, pid, late["consistency_token"], kind="campaign")
    assert len(page["entries"]) == 2


async def test_confirmation_and_unsubscribe_link_clicks_are_clicks_too_R21(api: Api) -> None:
    """Both are clicks (R21: the IP of clicks): each sets the latest-action location; the
    confirmation still confirms an unconfirmed profile (R9), in one fold of the event."""
    _, pid, _ = await new_profile(api, status="unconfirmed")
    ref = {"profile_id": pid}
    confirmed = await post(
        api, public("campaign.confirmation_clicked", ref, campaign_id="c", ip="81.2.69.142")
    )
    got = await api.read(f"/v1/profiles/{pid}", confirmed["consistency_token"])
    assert got.json()["tabs"]["tracked"]["city"] == "London"
    assert (got.json()["status"], got.json()["version"]) == ("subscribed", 2)
    left = await post(
        api, public("campaign.unsubscribe_clicked", ref, campaign_id="c", ip="203.0.113.99")
    )
    got = await api.read(f"/v1/profiles/{pid}", left["consistency_token"])
    assert got.json()["tabs"]["tracked"]["city"] == "Tokyo"


async def test_a_publisher_cannot_say_where_a_profile_is_R21(api: Api) -> None:
    """The location of an action comes from its IP, at intake: one a publisher sends is refused,
    and none of it (a made-up key, a name field, a typed field's garbage) reaches the profile."""
    _, pid, token = await new_profile(api, fields={"first_name": "Ann"})
    smuggled = {"first_name": "Injected", "email": "x@example.com", "country": "ZZ", "evil": 1}
    for kind, data in (
        ("pixel.hit", {"goal": "g"}),
        ("campaign.opened", {"campaign_id": "c"}),
        ("campaign.clicked", {"campaign_id": "c", "ip": "81.2.69.142"}),
    ):
        event = public(kind, {"profile_id": pid}, **data, location=smuggled)
        refused = await api.client.post("/v1/events", json={"events": [event]})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [
            {"field": "events.0.data.location", "rule": "set_from_ip", "value": None}
        ]
    got = await api.read(f"/v1/profiles/{pid}", token)
    assert got.json()["fields"] == {"first_name": "Ann"}


async def test_deleting_a_profile_deletes_its_history_R26(api: Api) -> None:
    _, pid, _ = await new_profile(api)
    await post(api, public("segment.entered", {"profile_id": pid}, segment_id="s"))
    deleted = await api.client.delete(f"/v1/profiles/{pid}")
    await api.client.get(
        f"/v1/profiles/{pid}", headers={"Consistency-Token": deleted.json()["consistency_token"]}
    )
    rows = await api.fetch(
        "SELECT count(*) AS n FROM read_models.history WHERE profile_id = $1", uuid.UUID(pid)
    )
    assert rows[0]["n"] == 0


async def test_pixel_records_a_hit_and_always_answers_a_gif_R18(api: Api) -> None:
    _, pid, token = await new_profile(api)
    xxh = xxh_id(uuid.UUID(pid))
    hit = await api.client.get(
        f"/px/{xxh}",
        params={"goal": "checkout", "value": "12.5", "url": "https://shop.example/c",
                "campaign": "spring", "data": '{"cart": 3}', "ab": "b"},
        headers={"Authorization": ""},  # the pixel is public
    )  # fmt: skip
    missing = await api.client.get("/px/0000000000000000", headers={"Authorization": ""})
    garbage = await api.client.get("/px/%%%%?value=abc&data={", headers={"Authorization": ""})
    for response in (hit, missing, garbage):
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/gif"
        assert response.content[:6] == b"GIF89a"
        assert "no-store" in response.headers["cache-control"]
    assert hit.content == missing.content == garbage.content  # never tells who exists
    summary = await _pixel_hit(api, pid, token)
    assert (summary["goal"], summary["value"], summary["campaign_id"]) == (
        "checkout",
        12.5,
        "spring",
    )
    assert summary["pixel_data"] == {"cart": 3, "ab": "b"}


async def test_a_pixel_parameter_its_field_cannot_hold_is_kept_and_the_hit_too_R18(
    api: Api,
) -> None:
    """A URL past 2,048 characters (UTM queries run long), a goal past 200, a value past a
    float: the hit is recorded, each such value as it came in `pixel_data`."""
    _, pid, token = await new_profile(api)
    url = "https://shop.example/c?" + "utm_content=x&" * 200
    hit = await api.client.get(
        f"/px/{xxh_id(uuid.UUID(pid))}",
        params={"goal": "g" * 201, "url": url, "value": "1e999", "cost": "2"},
        headers={"Authorization": ""},
    )
    assert hit.status_code == 200
    summary = await _pixel_hit(api, pid, token)
    assert [summary.get(k) for k in ("goal", "url", "value", "cost")] == [None, None, None, 2.0]
    assert summary["pixel_data"] == {"goal": "g" * 201, "url": url, "value": "1e999"}


async def test_forms_update_utm_only_when_the_form_says_so_R22(api: Api) -> None:
    _, pid, _ = await new_profile(api, fields={"utm_source": "import"})
    ref = {"profile_id": pid}
    utm = {"utm_source": "newsletter", "utm_campaign": "spring"}
    off = await post(api, public("form.submitted", ref, form_id="quiet", utm=utm))
    got = await api.read(f"/v1/profiles/{pid}", off["consistency_token"])
    assert got.json()["fields"]["utm_source"] == "import"
    on = await post(api, public("form.submitted", ref, form_id="loud", utm=utm, update_utm=True))
    got = await api.read(f"/v1/profiles/{pid}", on["consistency_token"])
    assert got.json()["tabs"]["reg"]["utm_source"] == "newsletter"
    assert got.json()["tabs"]["reg"]["utm_campaign"] == "spring"


async def test_a_period_that_ends_before_it_starts_is_a_422_R19(api: Api) -> None:
    _, pid, _ = await new_profile(api)
    now = datetime.now(UTC)
    backwards = {"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()}
    got = await api.client.get(f"/v1/profiles/{pid}/history", params=backwards)
    assert got.status_code == 422
    assert got.json()["errors"] == [
        {"field": "from", "rule": "after_to", "value": backwards["from"]}
    ]


async def _pixel_hit(api: Api, pid: str, token: str) -> dict[str, Any]:
    """The summary of the profile's pixel hit, recorded after the response: polled for."""
    for _ in range(100):
        page = await history(api, pid, token, kind="pixel")
        if page["entries"]:
            summary: dict[str, Any] = page["entries"][0]["summary"]
            return summary
        await asyncio.sleep(0.05)
    raise AssertionError("the pixel hit was never recorded")
