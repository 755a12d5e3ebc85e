"""`GET /metrics`: what an operator scrapes (Prometheus text format), free of personal data."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.api import Api

pytestmark = pytest.mark.postgres


def samples(text: str) -> dict[str, float]:
    """Each sample line of the exposition as `name{labels}` -> value."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


async def test_metrics_count_requests_by_route_and_show_the_projector(api: Api) -> None:
    database = await api.database()
    email = f"metrics.{uuid.uuid4().hex[:8]}@example.com"
    created = await api.client.post(f"/v1/databases/{database}/profiles", json={"email": email})
    assert created.status_code == 201
    by_email = f"/v1/databases/{database}/profiles/by-email/{email}"
    assert (await api.read(by_email, created.json()["consistency_token"])).status_code == 200
    async with httpx.AsyncClient(base_url=api.base) as anonymous:  # a scrape carries no key
        before = samples((await anonymous.get("/metrics")).text)
        assert (await api.client.get(f"/v1/profiles/{uuid.uuid4()}")).status_code == 404
        scraped = await anonymous.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = samples(scraped.text)

    missing = (
        'profiles_http_requests_total{route="/v1/profiles/{profile_id}",method="GET",status="404"}'
    )
    assert after[missing] == before.get(missing, 0) + 1
    read = 'route="/v1/databases/{database_id}/profiles/by-email/{email}",method="GET"'
    assert after[f'profiles_http_requests_total{{{read},status="200"}}'] >= 1
    count = after[f"profiles_http_request_duration_seconds_count{{{read}}}"]
    assert after[f'profiles_http_request_duration_seconds_bucket{{{read},le="+Inf"}}'] == count
    assert after['profiles_role_up{role="projector"}'] == 1
    assert after["profiles_projector_events_applied_total"] >= 2  # the database, the profile
    assert after["profiles_read_models_behind_events"] >= 0
    # routes are templates: the email in the path never becomes a label
    assert email not in scraped.text
    assert not re.search(r"@", scraped.text)
