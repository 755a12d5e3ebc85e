"""Every read of API.md honours a write's `Consistency-Token`: asked right after the write, it
answers with what the write did (these three once answered from before it, most of the time)."""

from __future__ import annotations

import uuid

import orjson
import pytest

from tests.api import Api
from tests.events import new_profile, post, public
from tests.integration.test_subscriptions_api import _resource

pytestmark = pytest.mark.postgres


async def test_the_recipient_read_waits_for_a_new_subscription_R12(api: Api) -> None:
    db, pid, _ = await new_profile(api, email="consistent.recipient@example.com")
    resource = await _resource(api, db)
    for attempt in range(5):  # each time right after the write: no luck in the timing
        contact = f"r{attempt}@example.com"
        made = await api.client.post(
            f"/v1/profiles/{pid}/subscriptions",
            json={"resource_id": resource, "channel": "email", "contact": contact, "priority": 0},
        )
        assert made.status_code == 201, made.text
        got = await api.client.get(
            f"/v1/resources/{resource}/recipient",
            params={"profile_id": pid, "channel": "email"},
            headers={"Consistency-Token": made.json()["consistency_token"]},
        )
        assert got.status_code == 200
        assert "consistency" not in got.headers
        assert got.json()["contact"] == contact  # the newest of equal priorities (R12)


async def test_the_export_waits_for_the_write_R27(api: Api) -> None:
    _, pid, _ = await new_profile(api, email="consistent.export@example.com")
    for attempt in range(5):
        name = f"Name{attempt}"
        patched = await api.client.patch(
            f"/v1/profiles/{pid}", json={"fields": {"first_name": name}}
        )
        assert patched.status_code == 200, patched.text
        got = await api.client.get(
            f"/v1/profiles/{pid}/export",
            headers={"Consistency-Token": patched.json()["consistency_token"]},
        )
        assert got.status_code == 200
        assert got.json()["profile"]["fields"]["first_name"] == name


async def test_the_segment_export_waits_for_the_entry_R23(api: Api) -> None:
    for _ in range(5):
        segment = f"seg-{uuid.uuid4().hex[:8]}"
        _, pid, _ = await new_profile(api)
        posted = await post(
            api, public("segment.entered", {"profile_id": pid}, segment_id=segment, manual=True)
        )
        got = await api.client.get(
            f"/v1/segments/{segment}/members",
            headers={"Consistency-Token": posted["consistency_token"]},
        )
        assert got.status_code == 200
        assert [orjson.loads(line)["profile_id"] for line in got.content.splitlines()] == [pid]


async def test_a_token_the_reads_cannot_parse_is_a_400(api: Api) -> None:
    for path in ("/v1/profiles/{pid}/export", "/v1/segments/s/members"):
        got = await api.client.get(
            path.format(pid=uuid.uuid4()), headers={"Consistency-Token": "not a token"}
        )
        assert got.status_code == 400
        assert got.headers["content-type"] == "application/problem+json"
