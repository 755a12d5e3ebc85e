"""Admin routes: databases and their custom-field structure (R1-R3), the suppression list (R8)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from contracts.api import (
    CreateDatabaseRequest,
    DatabaseView,
    FieldSpec,
    Problem,
    StandardFieldView,
)
from domain.database import DatabaseState
from domain.errors import ValidationError
from domain.fields import STANDARD_FIELDS, define_field
from domain.identity import normalise_email
from services import auth, consistency, identity, structure
from services.http_common import field_errors, model_response, problem, runtime


def router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["admin"])
    r.add_api_route(
        "/databases", create_database, methods=["POST"], status_code=201,
        responses={409: {"model": Problem}, 422: {"model": Problem}},
    )  # fmt: skip
    r.add_api_route(
        "/databases/{database_id}", get_database, methods=["GET"],
        response_model=DatabaseView, responses={404: {"model": Problem}},
    )  # fmt: skip
    r.add_api_route(
        "/databases/{database_id}/fields", add_field, methods=["POST"], status_code=201,
        response_model=DatabaseView, responses={404: {"model": Problem}, 422: {"model": Problem}},
    )  # fmt: skip
    r.add_api_route(
        "/databases/{database_id}/fields/{name}", remove_field, methods=["DELETE"],
        response_model=DatabaseView, responses={404: {"model": Problem}, 422: {"model": Problem}},
    )  # fmt: skip
    r.add_api_route(
        "/suppressions/{email}", get_suppression, methods=["GET"], status_code=204,
        responses={404: {"model": Problem}},
    )  # fmt: skip
    r.add_api_route(
        "/suppressions/{email}", remove_suppression, methods=["DELETE"], status_code=204,
        responses={404: {"model": Problem}},
    )  # fmt: skip
    return r


async def create_database(body: CreateDatabaseRequest, request: Request, _: auth.Admin) -> Any:
    """Create a database of profiles (R1); its id is part of every profile path."""
    rt = runtime(request)
    async with rt.pool.acquire() as conn:
        async with conn.transaction():  # the database and its event commit together
            try:
                event = await structure.create(conn, body.database_id, body.name)
            except ValidationError as taken:
                return problem(409, "Database exists", errors=field_errors(taken.violations))
            staged = await rt.log.stage(conn, [event])
        state = await structure.load(conn, body.database_id)
    positions = await rt.log.publish(staged)
    assert state is not None
    return _with_token(_view(state), consistency.token(positions), 201)


async def get_database(database_id: str, request: Request, _: auth.Admin) -> Any:
    """A database and its structure, as the ingest side enforces it."""
    async with runtime(request).pool.acquire() as conn:
        state = await structure.load(conn, database_id)
    return problem(404, "Database not found") if state is None else _view(state)


async def add_field(database_id: str, body: FieldSpec, request: Request, _: auth.Admin) -> Any:
    """Add a custom field (R3); a metadata change only, profiles are not rewritten (R1)."""
    definition = define_field(body.name, body.type, body.options, body.unique)
    rt = runtime(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        state = await structure.load(conn, database_id, lock=True)
        if state is None:
            return problem(404, "Database not found")
        event = await structure.add_field(conn, state, definition)
        staged = await rt.log.stage(conn, [event])
        state = await structure.load(conn, database_id)
    positions = await rt.log.publish(staged)
    assert state is not None
    return _with_token(_view(state), consistency.token(positions), 201)


async def remove_field(database_id: str, name: str, request: Request, _: auth.Admin) -> Any:
    """Remove a custom field: its values disappear from reads (R1), its name is retired."""
    rt = runtime(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        state = await structure.load(conn, database_id, lock=True)
        if state is None:
            return problem(404, "Database not found")
        event = await structure.remove_field(conn, state, name)
        staged = await rt.log.stage(conn, [event])
        state = await structure.load(conn, database_id)
    positions = await rt.log.publish(staged)
    assert state is not None
    return _with_token(_view(state), consistency.token(positions), 200)


async def get_suppression(email: str, request: Request, _: auth.Reader) -> Response:
    """204 when the address is on the global suppression list (R8), else 404."""
    async with runtime(request).pool.acquire() as conn:
        listed = await identity.suppressed(conn, [normalise_email(email)])
    return Response(status_code=204) if listed else problem(404, "Not suppressed")


async def remove_suppression(email: str, request: Request, _: auth.Admin) -> Response:
    """Take an address off the suppression list: the only way it becomes sendable again (R8)."""
    async with runtime(request).pool.acquire() as conn:
        removed = await identity.unsuppress(conn, normalise_email(email))
    return Response(status_code=204) if removed else problem(404, "Not suppressed")


def _view(state: DatabaseState) -> DatabaseView:
    return DatabaseView(
        database_id=state.database_id,
        name=state.name,
        created_at=state.created_at,
        fields=tuple(
            FieldSpec(name=f.name, type=f.type, options=list(f.options) or None, unique=f.unique)
            for f in state.fields.values()
        ),
        standard_fields=tuple(
            StandardFieldView(name=f.name, group=f.group, type=f.type, options=f.options)
            for f in STANDARD_FIELDS.values()
        ),
    )


def _with_token(view: DatabaseView, token: str, status: int) -> Response:
    return model_response(view, status, {"Consistency-Token": token})
