"""Helpers for tests that publish public events and read what they did."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tests.api import Api


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


async def new_profile(api: Api, **body: Any) -> tuple[str, str, str]:
    db = await api.database()
    made = await api.client.post(f"/v1/databases/{db}/profiles", json=body)
    assert made.status_code == 201, made.text
    return db, made.json()["profile_id"], made.json()["consistency_token"]
