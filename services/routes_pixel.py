"""The tracking pixel `GET /px/{xxh_id}`: a pixel hit from query parameters, always a 1x1 GIF.

The hit is recorded after the response is sent, so the answer is the same, and as fast, whether
the profile exists or not: the pixel never tells.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import ValidationError

from contracts.intake import ProfileRef, PublicEvent
from contracts.text import without_nul
from services.event_ids import new_id
from services.http_common import runtime
from services.intake import Intake
from services.runtime import Runtime

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_HEADERS = {"Cache-Control": "no-store, max-age=0", "Pragma": "no-cache"}
_NUMBERS = ("value", "cost")
_TEXTS = {"goal": "goal", "url": "url", "referrer": "referrer", "campaign": "campaign_id"}
# the longest each text may be in a pixel hit (contracts.activity_events.PixelHitData)
_LONGEST = {"goal": 200, "url": 2048, "referrer": 2048, "campaign_id": 128}
log = structlog.get_logger(__name__)


def router() -> APIRouter:
    r = APIRouter(tags=["pixel"])
    r.add_api_route(
        "/px/{xxh_id}",
        pixel,
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {"image/gif": {}}, "description": "Always a 1x1 GIF."}},
    )
    return r


async def pixel(xxh_id: str, request: Request, background: BackgroundTasks) -> Response:
    """Record a pixel hit (R18): goal, value, cost, url, referrer, campaign, data (a JSON
    object), any other parameter into `pixel_data`."""
    # a NUL, which no text column can hold, stands replaced rather than costing the hit
    params = without_nul(dict(request.query_params))
    background.add_task(_record, runtime(request), xxh_id, params, _ip(request))
    return Response(GIF, media_type="image/gif", headers=_HEADERS)


async def _record(rt: Runtime, xxh_id: str, params: dict[str, str], ip: str | None) -> None:
    try:
        event = PublicEvent(
            id=new_id(),
            type="pixel.hit",
            source="/px",
            profile=ProfileRef(xxh_id=xxh_id[:16]),
            data=without_nul(_data(params, ip)),  # `data` JSON may hold \u0000 escapes
        )
        outcomes, _ = await Intake(rt.pool, rt.log, rt.geo).accept([event])
    except (ValidationError, ValueError) as bad:
        log.info("pixel.ignored", reason=type(bad).__name__)
        return
    if outcomes[0].outcome == "rejected":
        log.info("pixel.ignored", reason=outcomes[0].violations[0].rule)


def _data(params: dict[str, str], ip: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"ip": ip} if ip else {}
    extra: dict[str, Any] = {}
    raw = params.pop("data", None)
    if raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = {"data": raw}
        extra.update(parsed if isinstance(parsed, dict) else {"data": parsed})
    for name, value in params.items():
        # a value its field cannot hold (too long, not a finite number) is kept as it came, in
        # `pixel_data`, rather than costing the hit (a URL with its UTM query runs long)
        if name in _TEXTS and len(value) <= _LONGEST[_TEXTS[name]]:
            data[_TEXTS[name]] = value
        elif name in _NUMBERS and math.isfinite(number := _number(value)):
            data[name] = number
        else:
            extra[name] = value
    data["pixel_data"] = extra
    return data


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None
