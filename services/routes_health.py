"""Probes for orchestrators: `/healthz` (is this process whole?) and `/readyz` (can it serve?).

Neither needs a key (a probe carries none) and neither says anything about profiles.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from projections import checkpoints, read_models
from services.http_common import runtime
from services.outages import TRANSIENT
from services.runtime import Runtime

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
    request without it (Kafka it can do without for a while: writes wait in the outbox).
    Also how many events of the log the read models are `behind`, when the log answers
    within a second too (`log` says whether it did)."""
    rt = runtime(request)
    began = time.monotonic()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S), rt.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except TRANSIENT as exc:
        down = {"status": "unavailable", "database": f"unavailable: {type(exc).__name__}"}
        return JSONResponse(down, status_code=503)
    answered = round(1000 * (time.monotonic() - began))
    body: dict[str, Any] = {"status": "ready", "database": "ok", "ms": answered}
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            body["behind"] = await behind(rt)
        body["log"] = "ok"
    except TRANSIENT as exc:  # readiness is the database's: the log may be away a while
        body |= {"behind": None, "log": f"unavailable: {type(exc).__name__}"}
    return JSONResponse(body)


async def behind(rt: Runtime) -> int:
    """Events of the log that the read models have not applied yet, over all partitions."""
    ends = await rt.log.ends()
    async with rt.pool.acquire() as conn:
        applied = await checkpoints.load(conn, read_models.NAME, rt.log.topic, list(ends))
    return sum(max(0, end - applied[p]) for p, end in ends.items())
