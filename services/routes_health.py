"""Probes for orchestrators: `/healthz` (is this process whole?) and `/readyz` (can it serve?).

Neither needs a key (a probe carries none) and neither says anything about profiles.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from projections import read_models
from services.eventlog.postgres import PostgresLog
from services.http_common import runtime
from services.outages import TRANSIENT

PROBE_TIMEOUT_S = 1.0


def router() -> APIRouter:
    routes = APIRouter(tags=["health"])
    routes.add_api_route("/healthz", healthz, methods=["GET"])
    routes.add_api_route("/readyz", readyz, methods=["GET"])
    return routes


async def healthz(request: Request) -> JSONResponse:
    """200 while every background role of this process (projector, import worker) runs; 503
    naming the ones that stopped, so that the process gets restarted."""
    roles: dict[str, asyncio.Task[None]] = request.app.state.roles
    stopped = sorted(name for name, task in roles.items() if task.done())
    if stopped:
        return JSONResponse({"status": "unhealthy", "stopped": stopped}, status_code=503)
    return JSONResponse({"status": "ok", "roles": sorted(roles)})


async def readyz(request: Request) -> JSONResponse:
    """200 when PostgreSQL answers within a second, 503 otherwise: the API cannot serve a
    request without it (Kafka it can do without for a while: writes wait in the outbox). With
    the PostgreSQL log, how many events the read models are behind it."""
    rt = runtime(request)
    began = time.monotonic()
    body: dict[str, Any] = {}
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S), rt.pool.acquire() as conn:
            if isinstance(rt.log, PostgresLog):  # its head and the projection's are both here
                body["behind"] = await conn.fetchval(
                    "SELECT (SELECT next_position FROM eventlog.head) - coalesce(("
                    "  SELECT next_offset FROM checkpoints WHERE projection = $1 AND topic = $2"
                    "), 0)",
                    read_models.NAME,
                    rt.log.topic,
                )
            else:
                await conn.fetchval("SELECT 1")
    except TRANSIENT as exc:
        body |= {"status": "unavailable", "database": f"unavailable: {type(exc).__name__}"}
        return JSONResponse(body, status_code=503)
    body |= {"status": "ready", "database": "ok", "ms": round(1000 * (time.monotonic() - began))}
    return JSONResponse(body)
