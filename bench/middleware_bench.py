"""What the HTTP middlewares of every request cost (`Measured` for /metrics, `Failures` for
problem documents), against the bare ASGI app they wrap, in one process, in the same run.

    python -m bench.middleware_bench [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from services.failures import Failures
from services.metrics import HttpMetrics, Measured


class _Route:
    path = "/v1/profiles/{profile_id}"


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """A route that answers at once: what is left is the wrapping's cost."""
    scope["route"] = _Route
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b""}


async def _send(message: Message) -> None:
    return None


async def per_request(app: Any, requests: int) -> float:
    """Microseconds a request through `app`."""
    began = time.perf_counter()
    for _ in range(requests):
        await app({"type": "http", "method": "GET", "path": "/x"}, _receive, _send)
    return (time.perf_counter() - began) / requests * 1e6


async def main(requests: int, rounds: int) -> None:
    wrapped = Measured(Failures(bare), HttpMetrics())
    for round_ in range(1, rounds + 1):
        raw = await per_request(bare, requests)
        full = await per_request(wrapped, requests)
        print(
            f"round {round_}: bare {raw:.2f} µs, with Measured+Failures {full:.2f} µs "
            f"(+{full - raw:.2f} µs a request, {full / raw:.2f}x)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(main(options.requests, options.rounds))
