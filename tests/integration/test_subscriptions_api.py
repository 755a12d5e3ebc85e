"""Resources and subscriptions over real HTTP and PostgreSQL (R7, R9-R17, R20)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.eventlog.postgres import PostgresLog
from services.subscribing import NewSubscription, Subscriptions
from tests.api import Api

pytestmark = pytest.mark.postgres


async def _resource(api: Api, db: str, **options: Any) -> str:
    resource_id = f"r_{uuid.uuid4().hex[:10]}"
    body = {
        "resource_id": resource_id,
        "database_id": db,
        "name": "News",
        "channels": ["email", "sms", "app_inbox"],
        "categories": ["news", "deals"],
        "custom_fields": [{"name": "tier", "type": "enum", "options": "gold,silver"}],
        **options,
    }
    created = await api.client.post("/v1/resources", json=body)
    assert created.status_code == 201, created.text
    return resource_id


async def _profile(api: Api, db: str, **body: Any) -> str:
    made = await api.client.post(f"/v1/databases/{db}/profiles", json=body)
    assert made.status_code == 201, made.text
    pid: str = made.json()["profile_id"]
    return pid


async def _subscribe(api: Api, pid: str, expect: int = 201, **body: Any) -> dict[str, Any]:
    response = await api.client.post(f"/v1/profiles/{pid}/subscriptions", json=body)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def _events(api: Api, events: list[tuple[str, str, str]]) -> dict[str, Any]:
    body = {
        "events": [
            {
                "id": str(uuid.uuid4()),
                "type": t,
                "source": "/tests/sender",
                "profile": {"profile_id": p},
                "data": {"campaign_id": "spring", "sub_id": s},
            }
            for t, p, s in events
        ]
    }
    response = await api.client.post("/v1/events", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _list(api: Api, pid: str, token: str) -> list[dict[str, Any]]:
    response = await api.read(f"/v1/profiles/{pid}/subscriptions", token)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


async def test_resource_round_trip_and_bad_definitions_R10_R16(api: Api) -> None:
    db = await api.database()
    rid = await _resource(api, db, raise_priority=True, opt_in="double")
    got = (await api.client.get(f"/v1/resources/{rid}")).json()
    assert got["channels"] == ["email", "sms", "app_inbox"]
    assert got["categories"] == ["news", "deals"]
    assert got["custom_fields"] == [{"name": "tier", "type": "enum", "options": ["gold", "silver"]}]
    assert (got["raise_priority"], got["opt_in"]) == (True, "double")
    bad = await api.client.post(
        "/v1/resources",
        json={
            "resource_id": "x1",
            "database_id": db,
            "name": "x",
            "channels": ["Bad Name"],
            "categories": ["ok", "NOT OK"],
        },
    )
    assert bad.status_code == 422
    assert {e["rule"] for e in bad.json()["errors"]} == {"channel_name_syntax", "category_syntax"}
    patched = await api.client.patch(f"/v1/resources/{rid}", json={"raise_priority": False})
    assert patched.json()["raise_priority"] is False


async def test_bad_subscription_input_names_each_error_and_writes_nothing(api: Api) -> None:
    db = await api.database()
    rid = await _resource(api, db)
    pid = await _profile(api, db)
    before = await api.fetch("SELECT count(*) AS n FROM eventlog.events")
    bad = await api.client.post(
        f"/v1/profiles/{pid}/subscriptions",
        json={
            "resource_id": rid,
            "channel": "email",
            "contact": "not-an-email",
            "fields": {"device_type": "tablet", "browser": "lynx"},
            "custom": {"tier": "bronze"},
            "categories": {"sports": True},
        },
    )
    assert bad.status_code == 422
    assert {(e["field"], e["rule"]) for e in bad.json()["errors"]} == {
        ("contact", "email_syntax"),
        ("fields.device_type", "enum_option"),
        ("fields.browser", "enum_option"),
        ("custom.tier", "enum_option"),
        ("categories.sports", "unknown_category"),
    }
    sms = await api.client.post(
        f"/v1/profiles/{pid}/subscriptions",
        json={"resource_id": rid, "channel": "sms", "contact": "12345"},
    )
    assert sms.json()["errors"] == [{"field": "contact", "rule": "phone_e164", "value": "12345"}]
    unknown = await api.client.post(
        f"/v1/profiles/{pid}/subscriptions",
        json={"resource_id": "nope", "channel": "email", "contact": "a@example.com"},
    )
    assert unknown.json()["errors"][0]["rule"] == "unknown_resource"
    channel = await api.client.post(
        f"/v1/profiles/{pid}/subscriptions",
        json={"resource_id": rid, "channel": "fax", "contact": "a@example.com"},
    )
    assert channel.json()["errors"][0]["rule"] == "unknown_channel"
    negative = await api.client.post(
        f"/v1/profiles/{pid}/subscriptions",
        json={"resource_id": rid, "channel": "email", "contact": "a@example.com", "priority": -1},
    )
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "priority"
    everything = await api.client.post(  # every error of the request in one problem document
        f"/v1/profiles/{pid}/subscriptions",
        json={"resource_id": rid, "channel": "fax", "contact": "x", "priority": -2,
              "fields": {"device_type": "toaster"}},
    )  # fmt: skip
    assert everything.status_code == 422
    assert {(e["field"], e["rule"]) for e in everything.json()["errors"]} == {
        ("priority", "min_0"),
        ("channel", "unknown_channel"),
        ("fields.device_type", "enum_option"),
    }
    assert await api.fetch("SELECT count(*) AS n FROM eventlog.events") == before


async def _event_count(api: Api) -> int:
    rows = await api.fetch("SELECT count(*) AS n FROM eventlog.events")
    return int(rows[0]["n"])


async def test_r17_subscribe_lists_shape_and_rule_errors_together(api: Api) -> None:
    """Issue 4: one 422 names the shape errors of a subscription and the rules its well-shaped
    parts break (R12, R16, R17, custom fields typed as R3), and nothing is written."""
    db = await api.database()
    rid = await _resource(api, db)
    made = await api.client.post(f"/v1/databases/{db}/profiles", json={})
    pid, token = made.json()["profile_id"], made.json()["consistency_token"]
    before = await _event_count(api)
    lists = "SELECT subscriptions FROM ingest.subscription_lists WHERE profile_id = $1"
    stored = await api.fetch(lists, uuid.UUID(pid))
    bad = await api.client.post(
        f"/v1/profiles/{pid}/subscriptions",
        json={
            "resource_id": rid,
            "channel": "email",
            "contact": "not-an-email",
            "priority": "high",
            "nickname": 1,
            "categories": {"news": "maybe", "sports": True},
            "fields": {"device_type": "toaster"},
            "custom": {"tier": "bronze"},
            "how": "fax",
        },
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert {(e["field"], e["rule"]) for e in bad.json()["errors"]} == {
        ("priority", "int_parsing"),
        ("nickname", "extra_forbidden"),
        ("categories.news", "bool_parsing"),
        ("how", "literal_error"),
        ("contact", "email_syntax"),
        ("categories.sports", "unknown_category"),
        ("fields.device_type", "enum_option"),
        ("custom.tier", "enum_option"),
    }
    unknown = await api.client.post(  # the resource is looked up for the well-shaped parts too
        f"/v1/profiles/{pid}/subscriptions",
        json={"resource_id": "nope", "channel": "email", "contact": "a@example.com", "x": 1},
    )
    assert unknown.status_code == 422
    assert {(e["field"], e["rule"]) for e in unknown.json()["errors"]} == {
        ("x", "extra_forbidden"),
        ("resource_id", "unknown_resource"),
    }
    partial = await api.client.post(  # without its contact the rest is no subscription to check
        f"/v1/profiles/{pid}/subscriptions",
        json={"resource_id": rid, "channel": "fax", "fields": {"device_type": "toaster"}},
    )
    assert partial.status_code == 422
    assert [(e["field"], e["rule"]) for e in partial.json()["errors"]] == [("contact", "missing")]
    missing = await api.client.post(
        f"/v1/profiles/{uuid.uuid4()}/subscriptions",
        json={"resource_id": rid, "channel": "fax", "contact": "a@example.com"},
    )
    assert missing.status_code == 404  # a body of the right shape: no such profile comes first
    assert await _event_count(api) == before  # nothing written
    assert await api.fetch(lists, uuid.UUID(pid)) == stored
    assert await _list(api, pid, token) == []


async def test_r17_subscription_patch_lists_shape_and_rule_errors_together(api: Api) -> None:
    """Issue 4: a change of a subscription names its shape errors and the rules its well-shaped
    parts break (R12 priority, unknown category, R17 fields, custom fields) in one 422."""
    db = await api.database()
    rid = await _resource(api, db)
    pid = await _profile(api, db)
    sub = await _subscribe(api, pid, resource_id=rid, channel="email", contact="p@example.com")
    before = await _event_count(api)
    bad = await api.client.patch(
        f"/v1/profiles/{pid}/subscriptions/{sub['sub_id']}",
        json={
            "status": "asleep",
            "priority": -1,
            "categories": {"news": "maybe", "sports": True},
            "fields": {"device_type": "toaster"},
            "custom": {"tier": "bronze"},
            "ip": 5,
        },
    )
    assert bad.status_code == 422
    assert {(e["field"], e["rule"]) for e in bad.json()["errors"]} == {
        ("status", "literal_error"),
        ("categories.news", "bool_parsing"),
        ("ip", "string_type"),
        ("priority", "min_0"),
        ("categories.sports", "unknown_category"),
        ("fields.device_type", "enum_option"),
        ("custom.tier", "enum_option"),
    }
    elsewhere = await api.client.patch(
        f"/v1/profiles/{pid}/subscriptions/{uuid.uuid4()}", json={"priority": 3}
    )
    assert elsewhere.status_code == 404  # a body of the right shape: no such subscription
    assert await _event_count(api) == before  # nothing written
    (got,) = await _list(api, pid, sub["consistency_token"])
    assert (got["status"], got["priority"], got["categories"]) == (
        "subscribed",
        0,
        {"news": True, "deals": True},
    )
    assert (got["fields"], got["custom"], [h["change"] for h in got["history"]]) == (
        {},
        {},
        ["added"],
    )


async def test_subscribe_read_back_with_consent_history_R10_R9(api: Api) -> None:
    db = await api.database()
    single = await _resource(api, db)
    double = await _resource(api, db, opt_in="double")
    pid = await _profile(api, db)
    first = await _subscribe(
        api,
        pid,
        resource_id=single,
        channel="email",
        contact=" Ann@Example.com ",
        fields={"device_type": "mobile", "ad_tracking_allowed": "yes"},
        how="form",
        ip="192.0.2.1",
    )
    assert (first["status"], first["priority"]) == ("subscribed", 0)
    second = await _subscribe(
        api, pid, resource_id=double, channel="email", contact="ann@example.com"
    )
    assert second["status"] == "unconfirmed"  # R9: double opt-in waits for the click
    subs = {s["sub_id"]: s for s in await _list(api, pid, second["consistency_token"])}
    got = subs[first["sub_id"]]
    assert got["contact"] == "ann@example.com"
    assert got["fields"] == {"device_type": "mobile", "ad_tracking_allowed": True}
    assert got["categories"] == {"news": True, "deals": True}
    assert got["history"][0]["change"] == "added"
    assert (got["history"][0]["how"], got["history"][0]["ip"]) == ("form", "192.0.2.1")
    dup = await api.client.post(
        f"/v1/profiles/{pid}/subscriptions",
        json={"resource_id": single, "channel": "email", "contact": "ann@example.com"},
    )
    assert dup.status_code == 409

    clicked = await _events(api, [("campaign.confirmation_clicked", pid, second["sub_id"])])
    assert clicked["results"][0]["subscription_status"] == "subscribed"
    subs = {s["sub_id"]: s for s in await _list(api, pid, clicked["consistency_token"])}
    assert subs[second["sub_id"]]["status"] == "subscribed"
    assert [h["change"] for h in subs[second["sub_id"]]["history"]] == ["added", "status"]
    assert subs[second["sub_id"]]["history"][1]["how"] == "campaign"


async def test_priority_shifts_only_with_the_option_and_no_explicit_priority_R13(api: Api) -> None:
    db = await api.database()
    raising = await _resource(api, db, raise_priority=True)
    plain = await _resource(api, db)
    pid = await _profile(api, db)
    a = await _subscribe(api, pid, resource_id=raising, channel="email", contact="a@example.com")
    b = await _subscribe(api, pid, resource_id=raising, channel="email", contact="b@example.com")
    c = await _subscribe(
        api, pid, resource_id=raising, channel="email", contact="c@example.com", priority=5
    )
    other = await _subscribe(api, pid, resource_id=plain, channel="email", contact="a@example.com")
    more = await _subscribe(api, pid, resource_id=plain, channel="email", contact="b@example.com")
    subs = {s["sub_id"]: s["priority"] for s in await _list(api, pid, more["consistency_token"])}
    assert subs[a["sub_id"]] == 1  # moved down when b came
    assert subs[b["sub_id"]] == 0
    assert subs[c["sub_id"]] == 5  # explicit: nobody moved
    assert (subs[other["sub_id"]], subs[more["sub_id"]]) == (0, 1)  # option off: max + 1


async def test_channel_limit_evicts_in_order_and_readding_is_new_R14_R15(api: Api) -> None:
    db = await api.database()
    rid = await _resource(api, db)
    pid = await _profile(api, db)
    subs = [
        await _subscribe(api, pid, resource_id=rid, channel="email", contact=f"u{n}@example.com")
        for n in range(20)
    ]
    bounced = subs[7]["sub_id"]
    patch = await api.client.patch(
        f"/v1/profiles/{pid}/subscriptions/{bounced}", json={"status": "hard_bounced"}
    )
    assert patch.status_code == 200
    sms = await _subscribe(api, pid, resource_id=rid, channel="sms", contact="+4930123456")
    assert sms["evicted"] is None  # another (resource, channel): its own 20
    extra = await _subscribe(api, pid, resource_id=rid, channel="email", contact="new@example.com")
    assert extra["evicted"] == bounced  # R14: status tier before priority and age
    listed = await _list(api, pid, extra["consistency_token"])
    assert bounced not in {s["sub_id"] for s in listed}
    assert len([s for s in listed if s["channel"] == "email"]) == 20
    deleted = subs[3]["sub_id"]
    assert (
        await api.client.delete(f"/v1/profiles/{pid}/subscriptions/{deleted}")
    ).status_code == 200
    again = await _subscribe(api, pid, resource_id=rid, channel="email", contact="u7@example.com")
    assert again["evicted"] == deleted  # soft-deleted ones go first
    assert again["sub_id"] != bounced  # R15: a new subscription
    listed = await _list(api, pid, again["consistency_token"])
    readded = next(s for s in listed if s["sub_id"] == again["sub_id"])
    assert readded["status"] == "subscribed"
    assert [h["change"] for h in readded["history"]] == ["added"]
    ledger = await api.fetch(
        "SELECT change, detail FROM read_models.subscription_ledger WHERE sub_id = $1 ORDER BY id",
        uuid.UUID(bounced),
    )
    assert [(r["change"], r["detail"]) for r in ledger][-1] == ("evicted", "resource_channel")


async def test_profile_limit_picks_across_resources_R14(api: Api) -> None:
    db = await api.database()
    resources = [await _resource(api, db) for _ in range(10)]
    pid = await _profile(api, db)
    oldest = None
    for rid in resources:
        for n in range(20):
            made = await _subscribe(
                api, pid, resource_id=rid, channel="sms", contact=f"+49301{n:05d}"
            )
            oldest = oldest or made["sub_id"]
    fresh = await _resource(api, db)
    extra = await _subscribe(api, pid, resource_id=fresh, channel="email", contact="x@example.com")
    # all subscribed, priorities 0..19 in each resource: the largest number, then the oldest
    listed = await _list(api, pid, extra["consistency_token"])
    assert len(listed) == 200
    assert extra["evicted"] is not None
    evicted = await api.fetch(
        "SELECT detail FROM read_models.subscription_ledger "
        "WHERE sub_id = $1 AND change = 'evicted'",
        uuid.UUID(extra["evicted"]),
    )
    assert evicted[0]["detail"] == "profile"
    assert oldest != extra["evicted"]  # the oldest has priority 0: kept


async def test_campaign_actions_touch_only_their_subscription_R20_R11(api: Api) -> None:
    db = await api.database()
    one, two = await _resource(api, db), await _resource(api, db)
    pid = await _profile(api, db)
    a = await _subscribe(api, pid, resource_id=one, channel="email", contact="hb@example.com")
    b = await _subscribe(api, pid, resource_id=two, channel="email", contact="hb@example.com")
    c = await _subscribe(api, pid, resource_id=two, channel="sms", contact="+4930555555")
    posted = await _events(
        api,
        [
            ("campaign.hard_bounced", pid, a["sub_id"]),
            ("campaign.unsubscribe_clicked", pid, c["sub_id"]),
            ("campaign.unsubscribe_clicked", pid, c["sub_id"]),  # again: nothing changes
            ("campaign.complained", pid, str(uuid.uuid4())),  # no such subscription
        ],
    )
    assert [(r["outcome"], r["subscription_status"]) for r in posted["results"]] == [
        ("accepted", "hard_bounced"),
        ("accepted", "unsubscribed"),
        ("accepted", None),  # again: in the history, but the status does not move
        ("accepted", None),  # no such subscription: in the history, nothing to move
    ]
    listed = {s["sub_id"]: s["status"] for s in await _list(api, pid, posted["consistency_token"])}
    assert listed == {
        a["sub_id"]: "hard_bounced",
        b["sub_id"]: "subscribed",
        c["sub_id"]: "unsubscribed",
    }
    assert (await api.client.get("/v1/suppressions/hb@example.com")).status_code == 204  # R8
    who = await api.client.get(  # b stays subscribed (R11), but its address is suppressed (R8)
        f"/v1/resources/{two}/recipient", params={"profile_id": pid, "channel": "email"}
    )
    assert who.json()["reason"] == "address_suppressed"
    complaint = await _events(api, [("campaign.complained", pid, b["sub_id"])])
    assert complaint["results"][0]["subscription_status"] == "complainer"
    history = await _list(api, pid, complaint["consistency_token"])
    ledger = next(s for s in history if s["sub_id"] == b["sub_id"])["history"]
    assert (ledger[-1]["how"], ledger[-1]["status"]) == ("campaign", "complainer")
    assert ledger[-1]["detail"] == "campaign.complained campaign=spring"


async def _sent_to(api: Api, events: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """Campaign actions naming where they were sent, not the subscription."""
    body = {
        "events": [
            {"id": str(uuid.uuid4()), "type": t, "source": "/tests/sender",
             "profile": {"profile_id": p}, "data": {"campaign_id": "autumn", **d}}
            for t, p, d in events
        ]
    }  # fmt: skip
    response = await api.client.post("/v1/events", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_actions_without_sub_id_move_the_resource_channel_they_name_R20_R8(
    api: Api,
) -> None:
    db = await api.database()
    one, two = await _resource(api, db), await _resource(api, db)
    pid = await _profile(api, db, email="nosub@example.com")
    a = await _subscribe(api, pid, resource_id=one, channel="email", contact="n1@example.com")
    b = await _subscribe(api, pid, resource_id=two, channel="email", contact="n2@example.com")
    c = await _subscribe(api, pid, resource_id=two, channel="sms", contact="+4930555556")
    posted = await _sent_to(
        api,
        [
            ("campaign.unsubscribe_clicked", pid, {"resource_id": two, "channel": "sms"}),
            ("campaign.hard_bounced", pid, {"resource_id": one, "channel": "email"}),
            ("campaign.complained", pid, {}),  # nowhere named: history only
        ],
    )
    assert [(r["outcome"], r["subscription_status"]) for r in posted["results"]] == [
        ("accepted", "unsubscribed"),
        ("accepted", "hard_bounced"),
        ("accepted", None),
    ]
    listed = {s["sub_id"]: s["status"] for s in await _list(api, pid, posted["consistency_token"])}
    assert listed == {
        a["sub_id"]: "hard_bounced",
        b["sub_id"]: "subscribed",  # the other resource's email list is intact
        c["sub_id"]: "unsubscribed",
    }
    assert (await api.client.get("/v1/suppressions/n1@example.com")).status_code == 204  # R8
    assert (await api.client.get("/v1/suppressions/nosub@example.com")).status_code == 404


async def test_unsubscribing_in_one_resource_leaves_another_intact_R11(api: Api) -> None:
    """The same address in two resources: unsubscribed in one (by the API, then by a link
    click), still subscribed, and still the recipient, in the other."""
    db = await api.database()
    one, two, three = [await _resource(api, db) for _ in range(3)]
    pid = await _profile(api, db)
    subs = [
        await _subscribe(api, pid, resource_id=r, channel="email", contact="both@example.com")
        for r in (one, two, three)
    ]
    patched = await api.client.patch(
        f"/v1/profiles/{pid}/subscriptions/{subs[0]['sub_id']}", json={"status": "unsubscribed"}
    )
    assert patched.status_code == 200, patched.text
    clicked = await _sent_to(
        api,
        [("campaign.unsubscribe_clicked", pid, {"sub_id": subs[2]["sub_id"], "ip": "192.0.2.7"})],
    )
    listed = await _list(api, pid, clicked["consistency_token"])
    assert {s["sub_id"]: s["status"] for s in listed} == {
        subs[0]["sub_id"]: "unsubscribed",
        subs[1]["sub_id"]: "subscribed",
        subs[2]["sub_id"]: "unsubscribed",
    }
    for rid, expected in ((one, None), (two, "both@example.com"), (three, None)):
        got = await api.client.get(
            f"/v1/resources/{rid}/recipient", params={"profile_id": pid, "channel": "email"}
        )
        assert got.json().get("contact") == expected, (rid, got.json())
    # the consent ledger keeps how and from where the click came (issue 4: source IP if known)
    ledger = next(s for s in listed if s["sub_id"] == subs[2]["sub_id"])["history"]
    assert (ledger[-1]["how"], ledger[-1]["ip"], ledger[-1]["status"]) == (
        "campaign",
        "192.0.2.7",
        "unsubscribed",
    )


async def test_a_confirmation_click_confirms_the_subscription_and_the_profile_R9_R7(
    api: Api,
) -> None:
    """R9 both sides: the double opt-in subscription and a globally unconfirmed profile."""
    db = await api.database()
    rid = await _resource(api, db, opt_in="double")
    pid = await _profile(api, db, status="unconfirmed")
    made = await _subscribe(api, pid, resource_id=rid, channel="email", contact="doi@example.com")
    assert made["status"] == "unconfirmed"
    clicked = await _events(api, [("campaign.confirmation_clicked", pid, made["sub_id"])])
    assert clicked["results"][0]["subscription_status"] == "subscribed"
    profile = await api.read(f"/v1/profiles/{pid}", clicked["consistency_token"])
    assert profile.json()["status"] == "subscribed"
    later = await api.client.put(f"/v1/profiles/{pid}/status", json={"status": "unsubscribed"})
    again = await _events(api, [("campaign.confirmation_clicked", pid, made["sub_id"])])
    profile = await api.read(f"/v1/profiles/{pid}", again["consistency_token"])
    assert later.status_code == 200
    assert profile.json()["status"] == "unsubscribed"  # a click overrides no refusal


async def test_an_email_bounce_naming_no_list_still_suppresses_the_address_R8(api: Api) -> None:
    db = await api.database()
    pid = await _profile(api, db, email="bounced.only@example.com")
    posted = await _sent_to(api, [("campaign.hard_bounced", pid, {"channel": "email"})])
    assert posted["results"][0]["outcome"] == "accepted"
    assert (await api.client.get("/v1/suppressions/bounced.only@example.com")).status_code == 204
    sms = await _profile(api, db, email="sms.bounce@example.com")
    await _sent_to(api, [("campaign.hard_bounced", sms, {"channel": "sms"})])
    assert (await api.client.get("/v1/suppressions/sms.bounce@example.com")).status_code == 404


async def test_recipient_follows_status_priority_and_categories_R7_R12_R16(api: Api) -> None:
    db = await api.database()
    rid = await _resource(api, db)
    pid = await _profile(api, db)
    low = await _subscribe(
        api, pid, resource_id=rid, channel="email", contact="low@example.com", priority=3
    )
    high = await _subscribe(
        api, pid, resource_id=rid, channel="email", contact="high@example.com", priority=1
    )
    await api.read(f"/v1/profiles/{pid}/subscriptions", high["consistency_token"])

    async def who(**params: Any) -> dict[str, Any]:
        got = await api.client.get(
            f"/v1/resources/{rid}/recipient",
            params={"profile_id": pid, "channel": "email", **params},
        )
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    assert (await who())["contact"] == "high@example.com"  # R12: smallest number wins
    off = await api.client.patch(
        f"/v1/profiles/{pid}/subscriptions/{high['sub_id']}", json={"categories": {"deals": False}}
    )
    await api.read(f"/v1/profiles/{pid}/subscriptions", off.json()["consistency_token"])
    assert (await who(category="deals"))["contact"] == "low@example.com"  # R16
    assert (await who(category="news"))["contact"] == "high@example.com"
    await api.client.patch(
        f"/v1/profiles/{pid}/subscriptions/{low['sub_id']}", json={"categories": {"deals": False}}
    )
    status = await api.client.put(f"/v1/profiles/{pid}/status", json={"status": "unsubscribed"})
    await api.read(f"/v1/profiles/{pid}", status.json()["consistency_token"])
    assert (await who())["reason"] == "global_status"  # R7
    assert (await who(channel="sms"))["reason"] == "global_status"
    params = {"profile_id": pid, "channel": "email"}
    nowhere = await api.client.get("/v1/resources/r_nowhere/recipient", params=params)
    assert nowhere.status_code == 404
    for wrong, rule in (
        ({"channel": "fax"}, "unknown_channel"),
        ({"category": "x"}, "unknown_category"),
    ):
        bad = await api.client.get(f"/v1/resources/{rid}/recipient", params={**params, **wrong})
        assert (bad.status_code, bad.json()["errors"][0]["rule"]) == (422, rule)


async def test_profile_delete_and_export_cover_subscriptions_R26_R27(api: Api) -> None:
    db = await api.database()
    rid = await _resource(api, db)
    pid = await _profile(api, db, email="gone@example.com")
    made = await _subscribe(api, pid, resource_id=rid, channel="email", contact="gone@example.com")
    await _list(api, pid, made["consistency_token"])
    export = (await api.client.get(f"/v1/profiles/{pid}/export")).json()
    assert [s["sub_id"] for s in export["read_models"]["subscriptions"]] == [made["sub_id"]]
    assert export["read_models"]["subscription_ledger"][0]["change"] == "added"
    deleted = await api.client.delete(f"/v1/profiles/{pid}")
    token = deleted.json()["consistency_token"]
    gone = await api.client.get(f"/v1/profiles/{pid}", headers={"Consistency-Token": token})
    assert gone.status_code == 404
    for table in ("subscriptions", "subscription_ledger"):
        rows = await api.fetch(
            f"SELECT count(*) AS n FROM read_models.{table} WHERE profile_id = $1", uuid.UUID(pid)
        )
        assert rows[0]["n"] == 0
    again = await api.client.post(
        f"/v1/profiles/{pid}/subscriptions",
        json={"resource_id": rid, "channel": "email", "contact": "x@example.com"},
    )
    assert again.status_code == 404


async def test_timeline_names_resource_and_channel_of_subscription_events_R18(api: Api) -> None:
    db = await api.database()
    rid = await _resource(api, db)
    pid = await _profile(api, db)
    made = await _subscribe(api, pid, resource_id=rid, channel="sms", contact="+4930123123")
    off = await api.client.patch(
        f"/v1/profiles/{pid}/subscriptions/{made['sub_id']}", json={"status": "unsubscribed"}
    )
    page = await api.read(
        f"/v1/profiles/{pid}/history?kind=subscription", off.json()["consistency_token"]
    )
    entries = page.json()["entries"]
    assert [(e["type"], e["summary"]["resource_id"], e["summary"]["channel"]) for e in entries] == [
        ("subscription.status_changed", rid, "sms"),
        ("subscription.added", rid, "sms"),
    ]
    assert entries[0]["summary"]["status"] == "unsubscribed"


async def test_evictions_and_status_changes_have_their_own_timeline_kinds_R18_R14(
    api: Api,
) -> None:
    db = await api.database()
    rid = await _resource(api, db)
    pid = await _profile(api, db)
    for n in range(21):  # the 21st of one (resource, channel) evicts one (R14)
        last = await _subscribe(
            api, pid, resource_id=rid, channel="email", contact=f"e{n}@example.com"
        )
    assert last["evicted"] is not None
    status = await api.client.put(f"/v1/profiles/{pid}/status", json={"status": "suspended"})
    token = status.json()["consistency_token"]
    evictions = (await api.read(f"/v1/profiles/{pid}/history?kind=eviction", token)).json()
    assert [e["type"] for e in evictions["entries"]] == ["subscription.evicted"]
    assert evictions["entries"][0]["summary"]["sub_id"] == last["evicted"]
    assert evictions["entries"][0]["summary"]["scope"] == "resource_channel"
    statuses = (await api.read(f"/v1/profiles/{pid}/history?kind=status", token)).json()
    assert [(e["type"], e["summary"]["status"]) for e in statuses["entries"]] == [
        ("profile.status_changed", "suspended")
    ]


async def test_priority_and_channel_fields_change_by_patch_and_bad_values_change_nothing_R12_R17(
    api: Api,
) -> None:
    db = await api.database()
    rid = await _resource(api, db)
    pid = await _profile(api, db)
    made = await _subscribe(api, pid, resource_id=rid, channel="email", contact="p@example.com")
    path = f"/v1/profiles/{pid}/subscriptions/{made['sub_id']}"
    # one PATCH, three parts: three events, each with its own id (they once shared one, and the
    # log, which keeps one event per id, kept only the first)
    changed = await api.client.patch(
        path, json={"priority": 7, "fields": {"device_type": "desktop"}, "custom": {"tier": "gold"}}
    )
    assert changed.status_code == 200, changed.text
    (sub,) = await _list(api, pid, changed.json()["consistency_token"])
    assert sub["priority"] == 7
    assert sub["fields"]["device_type"] == "desktop"
    assert sub["custom"] == {"tier": "gold"}
    for bad, rule in (
        ({"fields": {"device_type": "toaster"}}, None),
        ({"custom": {"tier": "bronze"}}, "enum_option"),
        ({"categories": {"nope": True}}, None),
    ):
        refused = await api.client.patch(path, json=bad)
        assert refused.status_code == 422, (bad, refused.text)
        if rule is not None:
            assert refused.json()["errors"][0]["rule"] == rule
    negative = await api.client.patch(path, json={"priority": -1})
    assert negative.status_code == 422
    (after,) = await _list(api, pid, changed.json()["consistency_token"])
    assert (after["priority"], after["fields"]["device_type"], after["custom"]) == (
        7,
        "desktop",
        {"tier": "gold"},
    )


class _CrashAfterAppend:
    """The PostgreSQL log, but the process "dies" right after an append, before the commit."""

    def __init__(self, log: PostgresLog) -> None:
        self._log = log
        self.topic = log.topic
        self.unique_ids = True

    async def stage(self, conn: Any, events: Any) -> Any:
        await self._log.stage(conn, events)
        raise RuntimeError("crash between the append and the commit")


async def test_on_the_postgresql_log_a_list_and_its_events_commit_together_R14(api: Api) -> None:
    """A failure after the append rolls back both: the log never holds an event the list lacks."""
    db = await api.database()
    rid = await _resource(api, db)
    pid = await _profile(api, db)
    log = PostgresLog(api.runtime.pool)
    await log.start()
    head = "SELECT next_position FROM eventlog.head WHERE one"
    before = await api.runtime.pool.fetchval(head)
    crashing = Subscriptions(api.runtime.pool, _CrashAfterAppend(log))  # type: ignore[arg-type]
    new = NewSubscription(resource_id=rid, channel="email", contact="atomic@example.com")
    with pytest.raises(RuntimeError):
        await crashing.add(uuid.UUID(pid), new)
    stored = await api.runtime.pool.fetchval(
        "SELECT subscriptions FROM ingest.subscription_lists WHERE profile_id = $1",
        uuid.UUID(pid),
    )
    assert stored in (None, [])  # the list did not change...
    added = await api.runtime.pool.fetchval(
        "SELECT count(*) FROM eventlog.events WHERE key = $1 "
        "AND convert_from(value, 'UTF8') LIKE '%subscription.added%'",
        pid.encode(),
    )
    assert added == 0  # ...and the log holds no event of it
    assert await api.runtime.pool.fetchval(head) == before
    made = await Subscriptions(api.runtime.pool, log).add(uuid.UUID(pid), new)
    assert [e.type for e in made.events] == ["subscription.added"]  # the retry goes through
