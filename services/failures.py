"""Requests that fail get a problem document, never a bare "Internal Server Error" text: a 503
with `Retry-After` while PostgreSQL or Kafka is away, a 500 naming an error id otherwise."""

from __future__ import annotations

import traceback
import uuid

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts import EventTooLargeError
from contracts.api import Problem
from services.http_common import PROBLEM
from services.outages import TRANSIENT

log = structlog.get_logger(__name__)

RETRY_AFTER_S = 1  # outages seen here (a restart, a failover) last seconds


class Failures:
    """ASGI middleware: an exception that escapes a route becomes a problem response.

    Logged with its type, the route's template and, for a 500, the frames of the traceback,
    but never its message: a driver's message may quote the values of a statement (an email in
    a unique-key violation), and paths hold emails and phones, so the template stands in.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching)
        except Exception as exc:
            if started:  # the response is on its way: nothing left to say to the client
                raise
            await send_problem(send, *_answer(scope, exc))


def _answer(scope: Scope, exc: Exception) -> tuple[Problem, dict[str, str]]:
    route = getattr(scope.get("route"), "path", None) or "(no route)"
    if isinstance(exc, EventTooLargeError):  # the request's fault: nothing was written
        log.info("http.event_too_large", route=route, size=exc.size)
        return Problem(title="Payload too large", status=413, detail=str(exc)), {}
    if isinstance(exc, TRANSIENT):
        log.warning("http.dependency_down", route=route, error=type(exc).__name__)
        body = Problem(
            title="Service unavailable",
            status=503,
            detail="A server this service needs (PostgreSQL or Kafka) is unavailable: retry later.",
        )
        return body, {"retry-after": str(RETRY_AFTER_S)}
    error_id = uuid.uuid4().hex[:16]
    frames = [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)]
    log.error("http.failed", route=route, error=type(exc).__name__, error_id=error_id, at=frames)
    body = Problem(
        title="Internal server error",
        status=500,
        detail=f"The request failed; the service's log has error {error_id}.",
    )
    return body, {}


async def send_problem(send: Send, body: Problem, headers: dict[str, str]) -> None:
    """Send a problem document from an ASGI middleware (no response object there)."""
    payload = orjson.dumps(body.model_dump(mode="json"))
    raw = [
        (b"content-type", PROBLEM.encode()),
        (b"content-length", str(len(payload)).encode()),
        *((k.encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": body.status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
