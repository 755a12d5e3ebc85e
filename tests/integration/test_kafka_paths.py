"""Write paths of issues 3 and 4 on the Kafka log, through the real service (R3-R8, R10-R20).

The same service as the other API tests, but its event log is a topic on the real broker:
imports append straight to Kafka, and every write that changes ingest state (databases and
fields, profile updates, status, deletes, subscription lists) goes through the transactional
outbox. Each write's consistency token then carries Kafka offsets, which the reads wait for.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api import Api

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _resource(api: Api, db: str) -> str:
    resource_id = f"r_{uuid.uuid4().hex[:10]}"
    created = await api.client.post(
        "/v1/resources",
        json={"resource_id": resource_id, "database_id": db, "name": "News",
              "channels": ["email", "sms"], "categories": ["news"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return resource_id


async def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_imports_updates_status_and_delete_over_kafka_R3_R6_R7_R8_R26(
    kafka_api: Api,
) -> None:
    api = kafka_api
    db = await api.database(visits={"type": "number"})
    body = {"email": "k1@example.com", "custom": {"visits": 1}}
    one = await _ok(await api.client.post(f"/v1/databases/{db}/profiles", json=body), 201)
    batch = await _ok(
        await api.client.post(
            f"/v1/databases/{db}/profiles:batch",
            json={"items": [{"email": "k2@example.com"}, {"status": "asleep"}]},
        )
    )
    assert [r["outcome"] for r in batch["results"]] == ["created", "rejected"]
    pid = one["profile_id"]
    patched = await _ok(
        await api.client.patch(
            f"/v1/profiles/{pid}", json={"increment": {"visits": 2}, "email": "k1b@example.com"}
        )
    )
    got = await api.read(f"/v1/profiles/{pid}", patched["consistency_token"])
    assert (got.json()["email"], got.json()["custom"]) == ("k1b@example.com", {"visits": 3})
    bounced = await _ok(
        await api.client.put(f"/v1/profiles/{pid}/status", json={"status": "hard_bounced"})
    )
    got = await api.read(f"/v1/profiles/{pid}", bounced["consistency_token"])
    assert got.json()["status"] == "hard_bounced"
    assert (await api.client.get("/v1/suppressions/k1b@example.com")).status_code == 204
    deleted = await _ok(await api.client.delete(f"/v1/profiles/{pid}"))
    gone = await api.client.get(
        f"/v1/profiles/{pid}", headers={"Consistency-Token": deleted["consistency_token"]}
    )
    assert gone.status_code == 404
    other = batch["results"][0]["profile_id"]
    kept = await api.read(f"/v1/profiles/{other}", batch["consistency_token"])
    assert kept.json()["email"] == "k2@example.com"


async def test_subscriptions_limits_and_campaign_actions_over_kafka_R14_R20_R11(
    kafka_api: Api,
) -> None:
    api = kafka_api
    db = await api.database()
    one, two = await _resource(api, db), await _resource(api, db)
    made = await _ok(await api.client.post(f"/v1/databases/{db}/profiles", json={}), 201)
    pid = made["profile_id"]
    subs = [  # the 21st of one (resource, channel) evicts one (R14)
        await _ok(
            await api.client.post(
                f"/v1/profiles/{pid}/subscriptions",
                json={"resource_id": one, "channel": "email", "contact": f"s{n}@example.com"},
            ),
            201,
        )
        for n in range(21)
    ]
    assert subs[-1]["evicted"] is not None
    keep = await _ok(
        await api.client.post(
            f"/v1/profiles/{pid}/subscriptions",
            json={"resource_id": two, "channel": "email", "contact": "s0@example.com"},
        ),
        201,
    )
    target = next(s for s in subs[:-1] if s["sub_id"] != subs[-1]["evicted"])
    acted = await _ok(
        await api.client.post(
            "/v1/events",
            json={"events": [{"id": str(uuid.uuid4()), "type": "campaign.unsubscribe_clicked",
                              "source": "/tests/kafka", "profile": {"profile_id": pid},
                              "data": {"campaign_id": "c", "sub_id": target["sub_id"]}}]},
        )
    )  # fmt: skip
    assert acted["results"][0]["subscription_status"] == "unsubscribed"
    listed = await api.read(f"/v1/profiles/{pid}/subscriptions", acted["consistency_token"])
    statuses = {s["sub_id"]: s["status"] for s in listed.json()}
    assert len(statuses) == 21  # 20 in resource one after the eviction, 1 in resource two
    assert subs[-1]["evicted"] not in statuses
    assert statuses[target["sub_id"]] == "unsubscribed"
    assert statuses[keep["sub_id"]] == "subscribed"  # R11: the other resource is intact
    removed = await _ok(
        await api.client.delete(f"/v1/profiles/{pid}/subscriptions/{keep['sub_id']}")
    )
    listed = await api.read(f"/v1/profiles/{pid}/subscriptions", removed["consistency_token"])
    assert {s["sub_id"]: s["deleted"] for s in listed.json()}[keep["sub_id"]] is True
    outbox = await api.fetch(
        "SELECT count(*) FILTER (WHERE b.partitions IS NULL) AS waiting, "
        "count(*) FILTER (WHERE t.type LIKE 'subscription.%') AS subscription_events "
        "FROM ingest.outbox_batches b, unnest(b.types) AS t(type) WHERE b.topic = $1",
        api.settings.events_topic,
    )
    assert outbox[0]["waiting"] == 0  # every staged event was published...
    assert outbox[0]["subscription_events"] >= 24  # ...and the list changes went through it
