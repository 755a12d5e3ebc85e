"""Pooled database sessions: which of them need a full reset when they go back to the pool."""

from __future__ import annotations

import asyncpg

# Server pids of pooled sessions that hold state beyond their transactions.
_STATEFUL: set[int] = set()


def keeps_session_state(conn: asyncpg.Connection) -> None:
    """Mark a pooled session that is about to take state outliving its transactions (a
    session-level advisory lock, a LISTEN): when it goes back to the pool, the pool runs the
    full reset (unlock all, unlisten, reset all), so a lock whose unlock never ran (a task
    cancelled mid-way) cannot stay held by an idle pooled session."""
    _STATEFUL.add(conn.get_server_pid())


async def reset_released(conn: asyncpg.Connection) -> None:
    """What a released connection needs before it is handed out again.

    asyncpg has already rolled back an open transaction and dropped its listeners here. Its
    default reset then sends one more query (unlock all, close cursors, unlisten, reset all) on
    every release: a round trip inside every read's latency, for state this code only creates
    in sessions marked by `keeps_session_state` (settings change only by `SET LOCAL`, cursors
    live in transactions). A pid reused by a later session only costs it one needless reset.
    """
    pid = conn.get_server_pid()
    if pid in _STATEFUL:
        _STATEFUL.discard(pid)
        if query := conn.get_reset_query():
            await conn.execute(query)
