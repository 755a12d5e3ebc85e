"""The HTTP APIs (FastAPI): profile import (ingest) and profile reads (query)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from contracts import ProfileImported, ProfileImportedData
from contracts.api import (
    FieldError,
    ImportProfileRequest,
    ImportProfileResponse,
    Problem,
    ProfileView,
)
from domain.errors import ValidationError
from domain.identity import md5_id, normalise_email, placeholder_email, xxh_id
from domain.profile import ProfileState
from projections import profiles
from services import asyncapi, consistency, identity
from services.projector import Projector
from services.runtime import Runtime, open_runtime
from services.settings import Settings

PROBLEM = "application/problem+json"


class ProblemResponse(JSONResponse):
    """A JSON response with the RFC 9457 media type."""

    media_type = PROBLEM


def problem(
    status: int, title: str, detail: str | None = None, errors: list[FieldError] | None = None
) -> ProblemResponse:
    body = Problem(title=title, status=status, detail=detail, errors=tuple(errors or ()))
    return ProblemResponse(body.model_dump(mode="json"), status_code=status)


def create_app(
    settings: Settings, *, ingest: bool = True, query: bool = True, projector: bool = False
) -> FastAPI:
    """The app for `serve` (all three roles) or one role of the distributed deployment."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await open_runtime(settings)
        app.state.rt = rt
        stop = asyncio.Event()
        task = None
        if projector:
            runner = Projector(rt.pool, rt.log, profiles.NAME, profiles.project)
            task = asyncio.create_task(runner.run(stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await rt.close()

    app = FastAPI(title="Subscriber Profiles", version="1", lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(ValidationError, _invalid_domain)
    app.add_api_route("/asyncapi.json", asyncapi.document, methods=["GET"], tags=["docs"])
    if ingest:
        app.include_router(_ingest_router())
    if query:
        app.include_router(_query_router())
    return app


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def _ingest_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["writes"])

    @router.post(
        "/databases/{database_id}/profiles",
        status_code=201,
        responses={200: {"model": ImportProfileResponse}, 422: {"model": Problem}},
    )
    async def import_profile(
        database_id: str, body: ImportProfileRequest, request: Request
    ) -> ImportProfileResponse:
        """Import one profile: create it, or update the profile that owns its email (R6)."""
        rt = _runtime(request)
        email = normalise_email(body.email) if body.email is not None else None
        if email is None:
            profile_id, created = uuid.uuid4(), True
        else:
            async with rt.pool.acquire() as conn:
                profile_id, created = await identity.claim_email(conn, database_id, email)
        event = ProfileImported(
            id=uuid.uuid4(),
            source="/v1/profiles",
            time=datetime.now(UTC),
            subject=profile_id,
            database_id=database_id,
            data=ProfileImportedData(
                import_mode="api",
                created=created,
                email=email,
                phones=body.phones,
                fields=body.fields,
                custom=body.custom,
            ),
        )
        positions = await rt.log.append([event])
        return ImportProfileResponse(
            profile_id=profile_id, created=created, consistency_token=consistency.token(positions)
        )

    return router


def _query_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["reads"])

    @router.get(
        "/profiles/{profile_id}",
        response_model=ProfileView,
        responses={404: {"model": Problem}, 400: {"model": Problem}},
    )
    async def get_profile(
        profile_id: UUID,
        request: Request,
        consistency_token: Annotated[str | None, Header(alias="Consistency-Token")] = None,
    ) -> Any:
        """The current profile; with a `Consistency-Token`, after the projection reached it."""
        rt = _runtime(request)
        caught_up = True
        if consistency_token is not None:
            try:
                positions = consistency.parse(consistency_token)
            except ValueError as exc:
                return problem(400, "Bad Consistency-Token", str(exc))
            caught_up = await consistency.wait(
                rt.pool, profiles.NAME, rt.log.topic, positions, rt.settings.consistency_wait
            )
        async with rt.pool.acquire() as conn:
            state = await profiles.get(conn, profile_id)
        if state is None:
            return problem(404, "Profile not found")
        view = _view(state)
        headers = {} if caught_up else {"Consistency": "behind"}
        return JSONResponse(view.model_dump(mode="json"), headers=headers)

    return router


def _view(state: ProfileState) -> ProfileView:
    pid = state.profile_id
    return ProfileView(
        profile_id=pid,
        database_id=state.database_id,
        md5_id=md5_id(pid),
        xxh_id=xxh_id(pid),
        email=state.email or placeholder_email(pid),
        phones=state.phones,
        fields=dict(state.fields),
        custom=dict(state.custom),
        status=state.status,
        import_mode=state.import_mode,
        created_at=state.created_at,
        updated_at=state.updated_at,
        version=state.version,
    )


async def _invalid_request(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(
            field=".".join(str(p) for p in e["loc"][1:]) or "body",
            rule=e["type"],
            value=_safe(e.get("input")),
        )
        for e in exc.errors()
    ]
    return problem(422, "Invalid request", errors=errors)


async def _invalid_domain(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ValidationError)
    errors = [FieldError(field=v.field, rule=v.rule, value=_safe(v.value)) for v in exc.violations]
    return problem(422, "Invalid request", errors=errors)


def _safe(value: object) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)
