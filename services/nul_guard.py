"""Refuse a NUL character in a request's path or query (`contracts.text` says why).

A path or query value reaches SQL as text (`/by-email/%00@x.com`, `/segments/s%00g/members`),
where PostgreSQL refuses it mid-statement: a 500, or a streamed export cut short. No stored
value can hold one, so the request is answered 422 before any route runs. The pixel is left
to its route: it answers its GIF whatever it is given.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.api import FieldError, Problem
from contracts.text import NUL
from services.failures import send_problem

PIXEL_PREFIX = "/px/"


class RefuseNul:
    """ASGI middleware: 422 `nul_character` for a NUL in the path or a query parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(PIXEL_PREFIX):
            places = _nul_places(scope["path"], scope.get("query_string", b""))
            if places:
                errors = [FieldError(field=p, rule="nul_character", value=None) for p in places]
                detail = "A NUL character (%00) cannot be stored or looked up."
                body = Problem(title="Invalid request", status=422, detail=detail, errors=errors)
                await send_problem(send, body, {})
                return
        await self.app(scope, receive, send)


def _nul_places(path: str, query: bytes) -> list[str]:
    places = ["path"] if NUL in path else []
    if b"%00" in query:  # the only way a query carries one; parsed only then
        pairs = parse_qsl(query.decode(errors="replace"), keep_blank_values=True)
        places += [f"query.{name.replace(NUL, '')}" for name, value in pairs if NUL in name + value]
    return places
