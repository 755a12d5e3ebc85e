"""`profiles import FILE --database DB`: a file import job run here, with a progress bar."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer

from domain.errors import ValidationError
from services import file_imports, structure
from services.event_ids import new_id
from services.file_imports import Format
from services.import_worker import owning
from services.runtime import open_runtime, run_loop, tune_gc
from services.settings import Settings

_SUFFIXES: dict[str, Format] = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def run_import(settings: Settings, file: Path, database_id: str, fmt: str | None, geo: bool) -> int:
    """Import `file` into the database; the exit code (0 done, 1 failed, 2 refused)."""
    chosen: Format | None = _SUFFIXES.get(file.suffix.lower())
    if fmt is not None:
        chosen = "csv" if fmt == "csv" else "ndjson" if fmt == "ndjson" else None
    if chosen is None:
        typer.echo("Say --format csv or --format ndjson (the file name does not tell).", err=True)
        return 2
    return run_loop(_run(settings, file.resolve(), database_id, chosen, geo))


async def _run(settings: Settings, file: Path, database_id: str, fmt: Format, geo: bool) -> int:
    rt = await open_runtime(settings, background=True)
    tune_gc()
    try:
        async with rt.pool.acquire() as conn:
            database = await structure.load(conn, database_id)
        if database is None:
            typer.echo(
                f"No database {database_id!r}: create it first (POST /v1/databases).", err=True
            )
            return 2
        try:
            await file_imports.check_header(database, file, fmt)
        except ValidationError as bad:
            for v in bad.violations:
                typer.echo(f"{v.field}: {v.rule} ({v.value})", err=True)
            return 2
        job_id = new_id()
        size = (await asyncio.to_thread(file.stat)).st_size
        started = time.monotonic()
        async with owning(rt.pool, job_id) as owned:  # locked before it exists: no one else runs it
            assert owned
            async with rt.pool.acquire() as conn:
                await file_imports.create(conn, database_id, fmt, geo, file, job_id)
            with typer.progressbar(length=max(size, 1), label="importing") as bar:
                job = await file_imports.run(
                    rt.pool,
                    rt.importer,
                    job_id,
                    lambda done, _: bar.update(done - bar.pos),
                    collect_between_chunks=True,
                )
        elapsed = time.monotonic() - started
        async with rt.pool.acquire() as conn:
            shown = await file_imports.errors(conn, job_id)
    finally:
        await rt.close()
    rate = job.rows_done / elapsed if elapsed > 0 else 0.0
    typer.echo(
        f"job {job_id}: {job.state}; {job.rows_done} rows in {elapsed:.1f} s ({rate:,.0f}/s): "
        f"{job.created} created, {job.updated} updated, {job.rejected} rejected"
    )
    for row in shown[:20]:
        problems = ", ".join(f"{e['field']}: {e['rule']}" for e in row["errors"])
        typer.echo(f"  row {row['row']}: {problems}")
    if job.rejected > 20:
        typer.echo(f"  … GET /v1/databases/{database_id}/imports/{job_id} lists them all")
    if job.failure:
        typer.echo(f"failed: {job.failure}", err=True)
    return 0 if job.state == "done" else 1
