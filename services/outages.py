"""What an outage of PostgreSQL or Kafka looks like from here, and how the roles wait it out.

Every long-running role (projector, intake, import worker, outbox sweep) retries on these and
never dies of them; the HTTP API answers them with 503 and `Retry-After`. Anything else is a
fault of the work itself (a bad event, a bug) and is handled where it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass

import asyncpg
from aiokafka.errors import KafkaError

# The servers failed, not the work: the same work succeeds once they are back.
TRANSIENT: tuple[type[Exception], ...] = (
    KafkaError,
    ConnectionError,  # refused, reset, aborted
    TimeoutError,
    socket.gaierror,  # a server's name that does not resolve (yet: containers start in turn)
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # e.g. "the underlying connection is closed"
    # the server is shutting down, crashed or still starting; not QueryCanceledError (a
    # statement timeout), its sibling, which would come back on every retry
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock
    # a pooled connection the server closed while it sat idle (a shutdown) fails its next
    # statement with "cannot switch to state ...; another operation is in progress"
    asyncpg.InternalClientError,
)
# OSError beyond the above (EHOSTUNREACH, ENETUNREACH surface as a bare OSError from connect)
# counts for the roles, which only ever open sockets; the HTTP API also writes files
ROLE_TRANSIENT: tuple[type[Exception], ...] = (*TRANSIENT, OSError)


@dataclass
class Backoff:
    """Pauses between retries of one role: `first`, doubling up to `longest`; `reset` once
    the role made progress again, so the next outage starts with a short pause."""

    first: float = 0.25
    longest: float = 5.0
    attempts: int = 0

    def next_pause(self) -> float:
        pause = min(self.first * float(2 ** min(self.attempts, 16)), self.longest)
        self.attempts += 1
        return pause

    def reset(self) -> None:
        self.attempts = 0


async def pause(seconds: float, stop: asyncio.Event | None = None) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
