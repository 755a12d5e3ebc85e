"""Interactions and data of a profile over real HTTP and PostgreSQL (R23-R26)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from tests.api import Api
from tests.events import history, new_profile, post, public

pytestmark = pytest.mark.postgres


async def _list(api: Api, pid: str, what: str, token: str) -> list[dict[str, Any]]:
    response = await api.read(f"/v1/profiles/{pid}/{what}", token)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def test_static_segments_enter_exit_and_export_R23(api: Api) -> None:
    segment = f"seg-{uuid.uuid4().hex[:8]}"
    people = [(await new_profile(api))[1] for _ in range(3)]
    posted = await post(
        api,
        *(
            public("segment.entered", {"profile_id": p}, segment_id=segment, manual=True)
            for p in people
        ),
        public("segment.exited", {"profile_id": people[1]}, segment_id=segment),
    )
    token = posted["consistency_token"]
    assert [s["segment_id"] for s in await _list(api, people[0], "segments", token)] == [segment]
    assert await _list(api, people[1], "segments", token) == []
    exported = await api.client.get(f"/v1/segments/{segment}/members")
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    members = [orjson.loads(line) for line in exported.content.splitlines()]
    assert sorted(m["profile_id"] for m in members) == sorted([people[0], people[2]])
    history = await api.read(f"/v1/profiles/{people[1]}/history?kind=segment", token)
    assert [e["type"] for e in history.json()["entries"]] == ["segment.exited", "segment.entered"]
    analytics = await api.fetch(
        "SELECT count(*) AS n FROM read_models.analytics_segment_members WHERE segment_id = $1",
        segment,
    )
    assert analytics[0]["n"] == 2


async def test_triggers_and_scenarios_with_results_R24(api: Api) -> None:
    _, pid, _ = await new_profile(api)
    ref = {"profile_id": pid}
    posted = await post(
        api,
        public("trigger.sent", ref, trigger_id="welcome", manual=True),
        public("scenario.entered", ref, scenario_id="onboarding", manual=True),
        public("scenario.finished", ref, scenario_id="onboarding", result="converted"),
        public("scenario.entered", ref, scenario_id="winback"),
    )
    token = posted["consistency_token"]
    triggers = await _list(api, pid, "triggers", token)
    assert triggers[0]["summary"] == {"trigger_id": "welcome", "manual": True}
    runs = {r["scenario_id"]: r for r in await _list(api, pid, "scenarios", token)}
    assert runs["onboarding"]["result"] == "converted"
    assert runs["onboarding"]["manual"] is True
    assert runs["winback"]["finished_at"] is None


async def test_enrolled_again_a_profile_keeps_its_earlier_runs_and_results_R24(api: Api) -> None:
    _, pid, _ = await new_profile(api)
    ref = {"profile_id": pid}
    start = datetime.now(UTC) - timedelta(hours=1)
    posted = await post(
        api,
        *(
            public(kind, ref, start + timedelta(minutes=n), scenario_id="onboarding", **extra)
            for n, (kind, extra) in enumerate(
                [
                    ("scenario.finished", {"result": "orphan"}),  # no enrolment seen: run 1
                    ("scenario.entered", {}),
                    ("scenario.finished", {"result": "converted"}),
                    ("scenario.entered", {"manual": True}),
                ]
            )
        ),
    )
    runs = await _list(api, pid, "scenarios", posted["consistency_token"])
    assert [(r["run"], r["result"], r["manual"], r["finished_at"] is None) for r in runs] == [
        (3, None, True, True),  # running now
        (2, "converted", False, False),
        (1, "orphan", False, False),
    ]


async def test_promo_codes_orders_forms_R25(api: Api) -> None:
    _, pid, _ = await new_profile(api)
    ref = {"profile_id": pid}
    item = {"sku": "hat", "quantity": 2, "price": 9.5}
    posted = await post(
        api,
        public("promo_code.attached", ref, code="SPRING-10", promo_id="spring"),
        public("promo_code.activated", ref, code="SPRING-10"),
        public("promo_code.attached", ref, code="OTHER"),
        public("promo_code.detached", ref, code="OTHER"),
        public(
            "order.recorded",
            ref,
            order_id="o1",
            status="new",
            currency="EUR",
            total=19.0,
            items=[item],
        ),
        public(
            "order.recorded",
            ref,
            order_id="o1",
            status="paid",
            currency="EUR",
            total=19.0,
            items=[item],
        ),
        public("form.submitted", ref, form_id="survey", data={"score": 9}),
    )
    token = posted["consistency_token"]
    codes = {c["code"]: c for c in await _list(api, pid, "promo-codes", token)}
    assert (codes["SPRING-10"]["state"], codes["SPRING-10"]["promo_id"]) == ("activated", "spring")
    assert codes["OTHER"]["state"] == "detached"
    (order,) = await _list(api, pid, "orders", token)
    assert (order["status"], order["total"], order["items"][0]["sku"]) == ("paid", 19.0, "hat")
    (form,) = await _list(api, pid, "forms", token)
    assert form["summary"]["data"] == {"score": 9}


async def test_relations_are_seen_from_both_sides_and_go_with_a_deleted_profile_R25_R26(
    api: Api,
) -> None:
    _, alice, _ = await new_profile(api)
    _, bob, _ = await new_profile(api)
    posted = await post(
        api,
        public(
            "relation.added", {"profile_id": alice}, relation_type="recommend", other_profile_id=bob
        ),
        public("relation.added", {"profile_id": alice}, relation_type="like", other_profile_id=bob),
        public(
            "relation.removed", {"profile_id": alice}, relation_type="like", other_profile_id=bob
        ),
    )
    token = posted["consistency_token"]
    mine = await _list(api, alice, "relations", token)
    theirs = await _list(api, bob, "relations", token)
    assert [(r["other_profile_id"], r["relation_type"], r["direction"]) for r in mine] == [
        (bob, "recommend", "out")
    ]
    assert [(r["other_profile_id"], r["direction"]) for r in theirs] == [(alice, "in")]
    assert len((await history(api, alice, token, kind="relation"))["entries"]) == 3
    deleted = await api.client.delete(f"/v1/profiles/{bob}")
    after = await _list(api, alice, "relations", deleted.json()["consistency_token"])
    assert after == []
    # nor does alice's timeline (or her export) keep a line naming bob
    page = await history(api, alice, deleted.json()["consistency_token"], kind="relation")
    assert page["entries"] == []
    # the deletion's statement can use the partial index (the planner may prefer a scan on
    # a test's small table: scans are put out of the running to see that it can)
    conn = await asyncpg.connect(api.settings.database_url)
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = await conn.fetch(
            "EXPLAIN DELETE FROM read_models.history WHERE kind = 'relation' "
            "AND (summary ->> 'other_profile_id')::uuid = ANY($1::uuid[])",
            [uuid.UUID(bob)],
        )
    finally:
        await conn.close()
    assert "history_relation_others" in "\n".join(r[0] for r in plan)


async def test_a_relation_is_between_two_profiles_R25(api: Api) -> None:
    _, me, token = await new_profile(api)
    event = public("relation.added", {"profile_id": me}, relation_type="like", other_profile_id=me)
    refused = await api.client.post("/v1/events", json={"events": [event]})
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"field": "events.0.data.other_profile_id", "rule": "same_profile", "value": me}
    ]
    assert await _list(api, me, "relations", token) == []


async def test_export_holds_every_read_model_and_ingest_row_of_the_profile_R27(api: Api) -> None:
    """R27: the timeline, interactions, data and identities are in the one document too."""
    _, me, _ = await new_profile(api, email="export.me@example.com", phones=["+4930777001"])
    _, other, _ = await new_profile(api)
    ref = {"profile_id": me}
    posted = await post(
        api,
        public("segment.entered", ref, segment_id="vip", manual=True),
        public("scenario.entered", ref, scenario_id="welcome"),
        public("promo_code.attached", ref, code="SPRING10", promo_id="spring"),
        public("order.recorded", ref, order_id="o-1", status="paid", currency="EUR", total=5.0),
        public("relation.added", ref, relation_type="friend", other_profile_id=other),
        public("campaign.hard_bounced", ref, campaign_id="c1"),
    )
    await api.read(f"/v1/profiles/{me}/orders", posted["consistency_token"])
    document = (await api.client.get(f"/v1/profiles/{me}/export")).json()
    models = document["read_models"]
    assert [r["segment_id"] for r in models["segment_members"]] == ["vip"]
    assert [r["scenario_id"] for r in models["scenario_runs"]] == ["welcome"]
    assert [r["code"] for r in models["promo_codes"]] == ["SPRING10"]
    assert [r["order_id"] for r in models["orders"]] == ["o-1"]
    assert [(r["other_profile_id"], r["direction"]) for r in models["relations"]] == [
        (other, "out")
    ]
    assert models["dead_letters"] == []  # none about this profile (one would show its bytes)
    kinds = [h["type"] for h in models["history"]]  # the whole timeline, oldest first
    assert kinds[0] == "profile.imported"
    assert {"segment.entered", "order.recorded", "campaign.hard_bounced"} <= set(kinds)
    ingest = document["ingest"]
    assert [p["profile_id"] for p in ingest["profiles"]] == [me]
    assert {(i["kind"], i["value"]) for i in ingest["identities"]} == {
        ("email", "export.me@example.com"),
        ("phone", "+4930777001"),
    }
    assert [s["email"] for s in ingest["suppressions"]] == ["export.me@example.com"]  # R8
