"""Refuse oversized request bodies with 413 before anything parses them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.api import Problem
from services.failures import send_problem


class BodyLimit:
    """ASGI middleware: a declared or streamed body over `limit` bytes gets a 413 problem.

    File uploads (paths ending in `exempt_suffix`) stream to disk under their own limit.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt_suffix: str = "/imports") -> None:
        self.app = app
        self.limit = limit
        self.exempt_suffix = exempt_suffix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].endswith(self.exempt_suffix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(send, f"The body exceeds the limit of {self.limit} bytes.")
            return
        seen = 0
        started = False

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLargeError
            return message

        async def watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, watching)
        except _TooLargeError:
            if not started:
                await too_large(send, f"The body exceeds the limit of {self.limit} bytes.")


class _TooLargeError(Exception):
    pass


async def too_large(send: Send, detail: str) -> None:
    """Send a 413 problem document."""
    await send_problem(send, Problem(title="Payload too large", status=413, detail=detail), {})
