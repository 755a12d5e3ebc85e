"""Runs queued and interrupted file-import jobs, one process per job at a time.

A job is owned through a session advisory lock held on a dedicated connection while it runs: if
the process dies, PostgreSQL drops the lock with the connection and another worker resumes the
job from its last recorded offset.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import structlog

from services import file_imports
from services.file_imports import Progress
from services.imports import Importer
from services.outages import ROLE_TRANSIENT, Backoff, pause
from services.sessions import keeps_session_state

log = structlog.get_logger(__name__)
_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('import:' || $1, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('import:' || $1, 0))"


@contextlib.asynccontextmanager
async def owning(pool: asyncpg.Pool, job_id: UUID) -> AsyncIterator[bool]:
    """Hold the job's lock for the block; yields False when another process holds it."""
    async with pool.acquire() as conn:
        keeps_session_state(conn)
        owned = bool(await conn.fetchval(_LOCK, str(job_id)))
        try:
            yield owned
        finally:
            if owned:
                await conn.execute(_UNLOCK, str(job_id))


async def run_owned(
    pool: asyncpg.Pool,
    importer: Importer,
    job_id: UUID,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> file_imports.Job | None:
    """Run a job if no one else is running it; None when someone is."""
    async with owning(pool, job_id) as owned:
        if not owned:
            return None
        return await file_imports.run(pool, importer, job_id, progress, stop)


class ImportWorker:
    """Polls for jobs to run; `wake()` makes it look at once (after an upload)."""

    def __init__(self, pool: asyncpg.Pool, importer: Importer, poll: float = 1.0) -> None:
        self._pool = pool
        self._importer = importer
        self._poll = poll
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run jobs until `stop` is set."""
        backoff = Backoff()
        while not stop.is_set():
            ran = False
            try:
                candidates = await self._candidates()
            except ROLE_TRANSIENT as exc:  # the database is away: look again once it is back
                seconds = backoff.next_pause()
                log.warning("import.worker_waiting", error=type(exc).__name__, pause=seconds)
                await pause(seconds, stop)
                continue
            backoff.reset()
            for job_id in candidates:
                if stop.is_set():
                    break
                try:
                    job = await run_owned(self._pool, self._importer, job_id, stop=stop)
                    ran = ran or job is not None
                except Exception as exc:  # the worker must outlive any one job
                    # the job stays resumable from its last recorded chunk; the next poll retries
                    log.warning("import.interrupted", job=str(job_id), error=type(exc).__name__)
            if not ran:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)

    async def _candidates(self) -> list[UUID]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT job_id FROM ingest.import_jobs WHERE state IN ('queued', 'running') "
                "ORDER BY created_at LIMIT 20"
            )
        return [r["job_id"] for r in rows]
