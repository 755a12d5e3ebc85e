"""File import routes: upload a CSV or NDJSON file as a job, then follow it (R3)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import IO, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request

from contracts.api import FieldError, ImportJobView, Problem, RowError
from domain.errors import ValidationError
from services import auth, consistency, file_imports, structure
from services.event_ids import new_id
from services.eventlog.port import Position
from services.file_imports import Format
from services.http_common import field_errors, model_response, problem, runtime

_TYPES: dict[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
}
_CSV_BODY = {"text/csv": {"schema": {"type": "string"}}}
_NDJSON_BODY = {"application/x-ndjson": {"schema": {"type": "string"}}}


def router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["imports"])
    r.add_api_route(
        "/databases/{database_id}/imports", upload, methods=["POST"], status_code=202,
        response_model=ImportJobView,
        responses={404: {"model": Problem}, 413: {"model": Problem}, 422: {"model": Problem}},
        openapi_extra={"requestBody": {"required": True, "content": {**_CSV_BODY, **_NDJSON_BODY}}},
    )  # fmt: skip
    r.add_api_route(
        "/databases/{database_id}/imports/{job_id}", follow, methods=["GET"],
        response_model=ImportJobView, responses={404: {"model": Problem}},
    )  # fmt: skip
    return r


async def upload(
    database_id: str,
    request: Request,
    _: auth.Writer,
    format: Annotated[Format | None, Query(description="Default: from Content-Type.")] = None,
    geo: Annotated[bool, Query(description="Locate `reg_ip` (R21: opt-in for files).")] = False,
) -> Any:
    """Store the body as a file and queue its import; answers at once with the job (202)."""
    rt = runtime(request)
    fmt = format or _TYPES.get(request.headers.get("content-type", "").split(";")[0].strip())
    if fmt is None:
        detail = "Send text/csv or application/x-ndjson, or say ?format=csv|ndjson."
        return problem(415, "Unsupported file type", detail)
    async with rt.pool.acquire() as conn:
        database = await structure.load(conn, database_id)
    if database is None:
        return problem(404, "Database not found")
    job_id = new_id()
    path = rt.settings.data_dir / "imports" / f"{job_id}.{fmt}"
    limit = rt.settings.max_import_bytes
    if not await _receive(request, path, limit):
        return problem(413, "Payload too large", f"The file exceeds {limit} bytes.")
    try:
        await file_imports.check_header(database, path, fmt)
    except ValidationError as bad:
        await asyncio.to_thread(path.unlink)
        return problem(422, "Invalid file", errors=field_errors(bad.violations))
    async with rt.pool.acquire() as conn:
        await file_imports.create(conn, database_id, fmt, geo, path, job_id)
        job = await file_imports.get(conn, job_id)
    request.app.state.import_worker.wake()
    assert job is not None
    location = f"/v1/databases/{database_id}/imports/{job_id}"
    return model_response(_view(job, []), 202, {"Location": location})


async def follow(
    database_id: str,
    job_id: UUID,
    request: Request,
    _: auth.Writer,  # API.md lists it with the import among the writes
    errors_after: Annotated[int, Query(ge=0, description="Row errors after this row.")] = 0,
) -> Any:
    """A job's progress, counts and per-row errors."""
    async with runtime(request).pool.acquire() as conn:
        job = await file_imports.get(conn, job_id)
        if job is None or job.database_id != database_id:
            return problem(404, "Import not found")
        rows = await file_imports.errors(conn, job_id, errors_after)
    return _view(job, rows)


async def _receive(request: Request, path: Path, limit: int) -> bool:
    """Stream the body to `path`; False (and no file) when it passes `limit` bytes."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    out: IO[bytes] = await asyncio.to_thread(path.open, "wb")
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                break
            await asyncio.to_thread(out.write, chunk)
    finally:
        await asyncio.to_thread(out.close)
    if size > limit:
        await asyncio.to_thread(path.unlink)
        return False
    return True


def _view(job: file_imports.Job, rows: list[dict[str, Any]]) -> ImportJobView:
    positions = [Position(int(p), o) for p, o in job.positions.items()]
    return ImportJobView(
        job_id=job.job_id,
        database_id=job.database_id,
        format=job.format,
        state=job.state,
        geo=job.locate,
        total_bytes=job.total_bytes,
        done_bytes=job.done_bytes,
        progress=round(job.done_bytes / job.total_bytes, 4) if job.total_bytes else 1.0,
        rows=job.rows_done,
        created=job.created,
        updated=job.updated,
        rejected=job.rejected,
        failure=job.failure,
        errors=tuple(
            RowError(row=r["row"], errors=tuple(FieldError(**e) for e in r["errors"])) for r in rows
        ),
        consistency_token=consistency.token(positions),
    )
