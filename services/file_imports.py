"""File imports (CSV, NDJSON) as resumable jobs: progress, counts and per-row errors (R3).

A job reads its file in chunks. Each chunk goes through the same pipeline as an API batch, with
event ids derived from (job, row): after a crash the job resumes at its last recorded byte
offset, and a chunk appended twice is applied once (projections dedupe event ids). A bad row is
recorded with its errors and the job goes on; only an unreadable file fails the job.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal
from uuid import UUID

import asyncpg
import orjson
import structlog
from pydantic import ValidationError as BodyError

from contracts.api import ImportProfileRequest
from contracts.text import NUL, nul_places
from domain.database import DatabaseState
from domain.errors import ValidationError, Violation
from domain.imports import ImportItem
from domain.rows import Columns, columns, item
from services import structure
from services.event_ids import derived_id, new_id
from services.http_common import field_errors
from services.imports import Checked, Importer, check, item_from_request
from services.runtime import BetweenBatches

Format = Literal["csv", "ndjson"]
CHUNK_ROWS = 5000
MAX_ERRORS_SHOWN = 1000
Progress = Callable[[int, int], None]  # (bytes done, bytes total)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Job:
    """A file import and where it stands."""

    job_id: UUID
    database_id: str
    format: Format
    locate: bool
    path: Path
    state: str
    total_bytes: int
    done_bytes: int
    rows_done: int
    created: int
    updated: int
    rejected: int
    positions: dict[str, int]
    failure: str | None


async def check_header(database: DatabaseState, path: Path, fmt: Format) -> None:
    """Refuse a CSV whose header names unknown columns, before a job exists (422)."""
    if fmt == "csv":
        header = await asyncio.to_thread(_header, path)
        columns(database, header[0])


async def create(
    conn: asyncpg.Connection,
    database_id: str,
    fmt: Format,
    locate: bool,
    path: Path,
    job_id: UUID | None = None,
) -> UUID:
    """Record a queued job for a file already on disk."""
    job_id = job_id or new_id()
    size = (await asyncio.to_thread(path.stat)).st_size
    await conn.execute(
        "INSERT INTO ingest.import_jobs (job_id, database_id, format, locate, path, total_bytes) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        job_id,
        database_id,
        fmt,
        locate,
        str(path),
        size,
    )
    return job_id


async def get(conn: asyncpg.Connection, job_id: UUID) -> Job | None:
    """A job, or None."""
    row = await conn.fetchrow("SELECT * FROM ingest.import_jobs WHERE job_id = $1", job_id)
    return None if row is None else _job(row)


async def errors(conn: asyncpg.Connection, job_id: UUID, after: int = 0) -> list[dict[str, Any]]:
    """Per-row errors of a job, by row number, from `after` on (at most MAX_ERRORS_SHOWN)."""
    rows = await conn.fetch(
        "SELECT row_no, errors FROM ingest.import_errors WHERE job_id = $1 AND row_no > $2 "
        "ORDER BY row_no LIMIT $3",
        job_id,
        after,
        MAX_ERRORS_SHOWN,
    )
    return [{"row": r["row_no"], "errors": r["errors"]} for r in rows]


async def run(
    pool: asyncpg.Pool,
    importer: Importer,
    job_id: UUID,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    collect_between_chunks: bool = False,
) -> Job:
    """Run (or resume) a job to its end, or until `stop` is set (it stays resumable).

    `collect_between_chunks`: the garbage collector runs between chunks only
    (`BetweenBatches`), for a process of its own (`profiles import`), not a server's.
    """
    async with pool.acquire() as conn:
        job = await get(conn, job_id)
        assert job is not None, job_id
        database = await structure.load(conn, job.database_id)
    if job.state in ("done", "failed"):
        return job
    if database is None:
        return await _fail(pool, job, "the database no longer exists")
    chunks = _chunks(job, database)
    # Reading and checking a chunk runs in a thread so that a server's event loop stays
    # responsive, and the next chunk is read while this one commits: while the commit waits
    # on PostgreSQL, the GIL is free for the reading thread.
    ahead = asyncio.ensure_future(asyncio.to_thread(_ready, chunks, database))
    try:
        with BetweenBatches(collect_between_chunks) as collector:
            while (ready := await ahead) is not None:
                ahead = asyncio.ensure_future(asyncio.to_thread(_ready, chunks, database))
                await _import_chunk(pool, importer, job, ready)
                del ready  # the chunk's rows, before the collector counts what is left
                collector.batch_done()
                job = await _reload(pool, job_id)
                if progress is not None:
                    progress(job.done_bytes, job.total_bytes)
                if stop is not None and stop.is_set():
                    return job
    except (OSError, UnicodeDecodeError, csv.Error, ValidationError) as exc:
        return await _fail(pool, job, f"{exc.__class__.__name__}: {_reason(exc)}")
    finally:
        # the reading thread may still be inside the generator: let it finish first (a
        # chunk read ahead and not committed is read again on resume, from done_bytes)
        await asyncio.gather(ahead, return_exceptions=True)
        chunks.close()
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE ingest.import_jobs SET state = 'done', updated_at = now() WHERE job_id = $1",
            job_id,
        )
    log.info("import.done", job=str(job_id), rows=job.rows_done, rejected=job.rejected)
    return await _reload(pool, job_id)


@dataclass(frozen=True)
class _Chunk:
    first_row: int
    items: list[ImportItem | list[Violation]]
    end_offset: int


@dataclass(frozen=True)
class _Ready:
    """A chunk read and checked, waiting to be committed."""

    chunk: _Chunk
    numbered: list[tuple[int, ImportItem | list[Violation]]]
    good: list[tuple[int, ImportItem]]
    checked: Checked


def _ready(chunks: Iterator[_Chunk], database: DatabaseState) -> _Ready | None:
    chunk = next(chunks, None)
    if chunk is None:
        return None
    numbered = list(enumerate(chunk.items, start=chunk.first_row))
    good = [(n, i) for n, i in numbered if isinstance(i, ImportItem)]
    return _Ready(chunk, numbered, good, check(database, [i for _, i in good]))


async def _import_chunk(pool: asyncpg.Pool, importer: Importer, job: Job, ready: _Ready) -> None:
    chunk, numbered, good = ready.chunk, ready.numbered, ready.good
    result = await importer.commit(
        ready.checked,
        "file",
        locate=job.locate,
        source=f"/v1/imports/{job.job_id}",
        ids=[derived_id(job.job_id, n) for n, _ in good],
    )
    bad: list[tuple[int, list[dict[str, Any]]]] = [
        (n, _plain(i)) for n, i in numbered if not isinstance(i, ImportItem)
    ]
    for (n, _), outcome in zip(good, result.outcomes, strict=True):
        if outcome.violations:
            bad.append((n, _plain(list(outcome.violations))))
    created = sum(o.created for o in result.outcomes if not o.violations)
    updated = sum(not o.created for o in result.outcomes if not o.violations)
    positions = dict(job.positions)  # one runner per job: its view is current
    for p in result.positions:
        positions[str(p.partition)] = max(positions.get(str(p.partition), -1), p.offset)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE ingest.import_jobs SET state = 'running', done_bytes = $2, "
            "rows_done = rows_done + $3, created = created + $4, updated = updated + $5, "
            "rejected = rejected + $6, positions = $7, updated_at = now() WHERE job_id = $1",
            job.job_id,
            chunk.end_offset,
            len(chunk.items),
            created,
            updated,
            len(bad),
            positions,
        )
        if bad:
            await conn.executemany(
                "INSERT INTO ingest.import_errors (job_id, row_no, errors) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                [(job.job_id, n, e) for n, e in bad],
            )


def _chunks(job: Job, database: DatabaseState) -> Generator[_Chunk, None, None]:
    """Chunks of parsed rows from the job's resume point (runs in a worker thread)."""
    with job.path.open("rb") as f:
        if job.format == "csv":
            header, header_end = _header(job.path)
            cols = columns(database, header)
            yield from _csv_chunks(f, max(job.done_bytes, header_end), job.rows_done + 1, cols)
        else:
            yield from _ndjson_chunks(f, job.done_bytes, job.rows_done + 1)


def _header(path: Path) -> tuple[list[str], int]:
    with path.open("rb") as f:
        offset = [0]
        records = csv.reader(_decoded(f, 0, offset))
        header = next(records, None)
        if header is None:
            raise ValidationError([Violation("header", "empty_file", str(path.name))])
        return header, offset[0]


def _csv_chunks(f: IO[bytes], start: int, first_row: int, cols: Columns) -> Iterator[_Chunk]:
    offset = [start]
    records = csv.reader(_decoded(f, start, offset))
    row_no = first_row
    while True:
        items: list[ImportItem | list[Violation]] = []
        for cells in records:
            if not any(c.strip() for c in cells):
                continue  # a blank line is not a row
            if unstorable := [i for i, c in enumerate(cells) if NUL in c]:  # contracts.text
                items.append(
                    [Violation(f"column {i + 1}", "nul_character", None) for i in unstorable]
                )
                continue
            try:
                items.append(item(cols, cells))
            except ValidationError as error:
                items.append(error.violations)
            if len(items) == CHUNK_ROWS:
                break
        if not items:
            return
        yield _Chunk(row_no, items, offset[0])
        row_no += len(items)


def _ndjson_chunks(f: IO[bytes], start: int, first_row: int) -> Iterator[_Chunk]:
    f.seek(start)
    offset = start
    row_no = first_row
    while True:
        items: list[ImportItem | list[Violation]] = []
        for line in f:
            offset += len(line)
            if line.strip():
                items.append(_json_item(line))
            if len(items) == CHUNK_ROWS:
                break
        if not items:
            return
        yield _Chunk(row_no, items, offset)
        row_no += len(items)


def _json_item(line: bytes) -> ImportItem | list[Violation]:
    try:
        body = ImportProfileRequest.model_validate_json(line)
    except BodyError as error:
        return [
            Violation(".".join(str(p) for p in e["loc"]) or "line", e["type"], None)
            for e in error.errors(include_url=False)
        ]
    if b"\\u0000" in line and (places := nul_places(orjson.loads(line))):  # contracts.text
        return [Violation(place, "nul_character", None) for place in places]
    given = body.model_fields_set  # a line's own geo and mode only when it says so: else the
    # job's (a file import is "file" mode and locates only when asked, R21), not the API's
    return replace(
        item_from_request(body),
        locate=body.geo if "geo" in given else None,
        mode=body.mode if "mode" in given else None,
    )


def _decoded(f: IO[bytes], start: int, offset: list[int]) -> Iterator[str]:
    """Text lines for csv.reader, keeping `offset[0]` at the byte after the last line given."""
    f.seek(start)
    decode = codecs.getincrementaldecoder("utf-8-sig" if start == 0 else "utf-8")().decode
    for line in f:
        offset[0] += len(line)
        yield decode(line)


async def _reload(pool: asyncpg.Pool, job_id: UUID) -> Job:
    async with pool.acquire() as conn:
        job = await get(conn, job_id)
    assert job is not None
    return job


async def _fail(pool: asyncpg.Pool, job: Job, reason: str) -> Job:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE ingest.import_jobs SET state = 'failed', failure = $2, updated_at = now() "
            "WHERE job_id = $1",
            job.job_id,
            reason,
        )
    log.warning("import.failed", job=str(job.job_id), reason=reason)
    return await _reload(pool, job.job_id)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{v.field}: {v.rule}" for v in exc.violations)
    return str(exc)[:200]


def _plain(violations: list[Violation]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in field_errors(violations)]


def _job(row: asyncpg.Record) -> Job:
    return Job(
        job_id=row["job_id"],
        database_id=row["database_id"],
        format=row["format"],
        locate=row["locate"],
        path=Path(row["path"]),
        state=row["state"],
        total_bytes=row["total_bytes"],
        done_bytes=row["done_bytes"],
        rows_done=row["rows_done"],
        created=row["created"],
        updated=row["updated"],
        rejected=row["rejected"],
        positions={k: int(v) for k, v in row["positions"].items()},
        failure=row["failure"],
    )
