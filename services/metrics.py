"""`GET /metrics` in the Prometheus text format: requests by route and status, their latency, the
projector's counters, and how far the read models are behind the log.

Written out by hand (the format is a few lines of text) rather than with another dependency.
Labels are route templates, methods and statuses only: never a path, which may hold an email.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.outages import TRANSIENT
from services.routes_health import PROBE_TIMEOUT_S, behind  # the same measure as /readyz

# seconds; a read is a few milliseconds, a write tens, a batch of 1,000 a second or more
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Latency:
    """One histogram series: counts per bucket (cumulated when written out), sum and count."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1


@dataclass
class HttpMetrics:
    """What the middleware counts, per (route template, method) and status."""

    requests: defaultdict[tuple[str, str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    latency: defaultdict[tuple[str, str], Latency] = field(
        default_factory=lambda: defaultdict(Latency)
    )


class Measured:
    """ASGI middleware: counts each HTTP request and times it until its response started."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        status = 500  # unless a response starts: an error no middleware turned into one

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests[(route, method, str(status))] += 1
            self.metrics.latency[(route, method)].observe(time.monotonic() - began)


async def metrics(request: Request) -> PlainTextResponse:
    """The process's metrics, for a Prometheus scrape (no key needed, no personal data)."""
    state = request.app.state
    lines = list(_http(state.http_metrics))
    lines += _roles(state.roles)
    projector = getattr(state, "projector", None)
    if projector is not None:
        lines += _projector(vars(projector.stats))
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            lag = await behind(state.rt)
    except TRANSIENT:  # the log or the database away: no figure rather than a wrong one
        lag = None
    if lag is not None:
        lines += _gauge("profiles_read_models_behind_events", "Log events not applied yet.", lag)
    return PlainTextResponse("\n".join(lines) + "\n", media_type=CONTENT_TYPE)


def _http(http: HttpMetrics) -> Iterator[str]:
    yield "# HELP profiles_http_requests_total HTTP requests by route template and status."
    yield "# TYPE profiles_http_requests_total counter"
    for (route, method, status), n in sorted(http.requests.items()):
        labels = _labels(route=route, method=method, status=status)
        yield f"profiles_http_requests_total{{{labels}}} {n}"
    name = "profiles_http_request_duration_seconds"
    yield f"# HELP {name} Time until the response started, by route template."
    yield f"# TYPE {name} histogram"
    for (route, method), series in sorted(http.latency.items()):
        labels = _labels(route=route, method=method)
        running = 0
        for bound, n in zip((*map(str, BUCKETS), "+Inf"), series.buckets, strict=True):
            running += n
            yield f'{name}_bucket{{{labels},le="{bound}"}} {running}'
        yield f"{name}_sum{{{labels}}} {series.total:.6f}"
        yield f"{name}_count{{{labels}}} {series.count}"


def _roles(roles: dict[str, asyncio.Task[None]]) -> list[str]:
    name = "profiles_role_up"
    lines = [
        f"# HELP {name} 1 while a background role of the process runs.",
        f"# TYPE {name} gauge",
    ]
    lines += [f"{name}{{{_labels(role=r)}}} {int(not t.done())}" for r, t in sorted(roles.items())]
    return lines


_PROJECTOR = {
    "applied": ("events_applied_total", "Events folded into the read models."),
    "dead": ("dead_letters_total", "Records buried as dead letters."),
    "batches": ("batches_total", "Batches applied."),
    "retries": ("retries_total", "Rounds that failed on an outage and were tried again."),
    "fenced": ("fenced_total", "Batches refused for checkpoints another process moved."),
}


def _projector(stats: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, (suffix, text) in _PROJECTOR.items():
        name = f"profiles_projector_{suffix}"
        lines += [f"# HELP {name} {text}", f"# TYPE {name} counter", f"{name} {stats[key]}"]
    return lines


def _gauge(name: str, text: str, value: int) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value}"]


def _labels(**values: str) -> str:
    return ",".join(f'{k}="{_escaped(v)}"' for k, v in values.items())


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
