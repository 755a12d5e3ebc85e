"""Every error of the API is a problem document (API.md), Starlette's own ones included."""

from __future__ import annotations

import httpx
import pytest

from tests.api import Api

pytestmark = pytest.mark.postgres


async def test_no_such_route_is_a_404_problem(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.base) as anonymous:
        for client in (api.client, anonymous):
            got = await client.get("/v1/nope")
            assert got.status_code == 404
            assert got.headers["content-type"] == "application/problem+json"
            assert got.json() == {
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": None,
                "errors": [],
            }


async def test_a_method_the_route_lacks_is_a_405_problem_saying_what_is_allowed(api: Api) -> None:
    got = await api.client.put("/v1/databases")
    assert got.status_code == 405
    assert got.headers["content-type"] == "application/problem+json"
    assert got.headers["allow"] == "POST"
    assert got.json()["title"] == "Method Not Allowed"
