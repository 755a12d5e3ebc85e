"""The OpenAPI document as the server answers, not as FastAPI guesses from route signatures.

FastAPI documents a 422 as its own `HTTPValidationError` and cannot see the exception handlers
(every error is a `Problem` as `application/problem+json`), the 401/403 of the auth dependencies,
or what a route that builds its own response sends. One pass over the generated document
(`document_answers`) puts those in; it changes no route, so the routes stay plain.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from contracts.api import DatabaseView, Problem, ProfileView
from projections import interactions
from services import auth
from services.http_common import PROBLEM
from services.metrics import CONTENT_TYPE

_SCHEMAS = "#/components/schemas/"
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
# FastAPI's own 422 body, which no route sends (the handlers answer problem documents)
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")
_ROW = {
    "type": "object",
    "description": "A stored row: its columns by name, ids and timestamps as text.",
}


def document_answers(app: FastAPI) -> None:
    """Revise `app`'s generated OpenAPI document each time FastAPI builds it anew."""
    build = app.openapi
    revised: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = build()
        # FastAPI returns its cached document until the routes change: revise each one once
        if not revised or revised[0] is not document:
            revised[:] = [revise(document, permissions(app.routes))]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def revise(document: dict[str, Any], needs: dict[tuple[str, str], str]) -> dict[str, Any]:
    """`document` with problem documents, auth answers and hand-made results put in."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    _add_problem(schemas)
    for path, method, operation in _operations(document):
        responses = operation.setdefault("responses", {})
        results = _RESULTS.get((method, path), {})
        responses.update({status: responses.get(status, {}) | r for status, r in results.items()})
        if _takes_token(operation):  # `caught_up` refuses a malformed token
            responses.setdefault("400", {"description": "Malformed `Consistency-Token`."})
        if (permission := needs.get((method.upper(), path))) is not None:
            _secure(operation, permission)
        for status, response in responses.items():
            if status.startswith(("4", "5")) or status == "default":
                response["content"] = {PROBLEM: {"schema": {"$ref": _SCHEMAS + Problem.__name__}}}
        operation["responses"] = dict(sorted(responses.items()))
    _drop_unused(document, schemas)
    return document


def permissions(routes: Iterable[BaseRoute]) -> dict[tuple[str, str], str]:
    """(method, path) of each route an auth dependency guards -> the permission it demands."""
    found: dict[tuple[str, str], str] = {}
    for route in api_routes(routes):
        needed = needed_permissions(route.dependant)
        if needed:
            found |= {(method, route.path_format): needed[0] for method in route.methods or ()}
    return found


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route, those of included routers too."""
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's lazily included router
        if included is not None:
            yield from api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def needed_permissions(dependant: Dependant) -> list[str]:
    """The permissions a route's dependencies demand (`auth.require`), nested ones too."""
    found: list[str] = []
    for dependency in dependant.dependencies:
        if (permission := auth.permission_of(dependency.call)) is not None:
            found.append(permission)
        found += needed_permissions(dependency)
    return found


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                yield path, method, operation


def _takes_token(operation: dict[str, Any]) -> bool:
    return any(
        p.get("in") == "header" and p.get("name") == "Consistency-Token"
        for p in operation.get("parameters", [])
    )


def _secure(operation: dict[str, Any], permission: str) -> None:
    """The answers of `auth.require`: 401 without a usable key, 403 without the permission."""
    operation["x-permission"] = permission
    needs = f"Needs an API key with the `{permission}` permission."
    operation["description"] = f"{operation.get('description', '')}\n\n{needs}".strip()
    responses = operation["responses"]
    responses["401"] = {
        "description": "No API key, or a malformed, unknown or revoked one.",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
    }
    responses["403"] = {"description": f"The API key lacks the `{permission}` permission."}


def _add_problem(schemas: dict[str, Any]) -> None:
    # present whenever a route names Problem; an app of the health routes only names none
    schema = Problem.model_json_schema(ref_template=_SCHEMAS + "{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault(Problem.__name__, schema)


def _drop_unused(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    for name in _FASTAPI_ERRORS:  # HTTPValidationError first: it names ValidationError
        if name in schemas and not _named(document, _SCHEMAS + name):
            del schemas[name]


def _named(value: Any, ref: str) -> bool:
    if isinstance(value, dict):
        return value.get("$ref") == ref or any(_named(v, ref) for v in value.values())
    if isinstance(value, list):
        return any(_named(v, ref) for v in value)
    return False


def _json(schema: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}, **rest}


_TOKEN_HEADER = {
    "Consistency-Token": {
        "description": "Pass it on a read to see this write.",
        "schema": {"type": "string"},
    }
}

# What routes that build their own response send, read off those routes.
_RESULTS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("get", "/metrics"): {
        "200": {
            "description": f"The Prometheus text format: `{CONTENT_TYPE}`.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
    # routes_admin.create_database: `_with_token(_view(state), token, 201)`
    ("post", "/v1/databases"): {
        "201": _json({"$ref": _SCHEMAS + DatabaseView.__name__}, headers=_TOKEN_HEADER)
    },
    # routes_reads.export_profile
    ("get", "/v1/profiles/{profile_id}/export"): {
        "200": _json(
            {
                "type": "object",
                "required": ["exported_at", "profile", "read_models", "ingest"],
                "properties": {
                    "exported_at": {"type": "string", "format": "date-time"},
                    "profile": {"$ref": _SCHEMAS + ProfileView.__name__},
                    "read_models": {"type": "object", "description": "Rows by read model."},
                    "ingest": {
                        "type": "object",
                        "description": "The ingest side's rows, by table.",
                        "additionalProperties": {"type": "array", "items": _ROW},
                    },
                },
            },
            headers={"Content-Disposition": {"schema": {"type": "string"}}},
        )
    },
    # routes_reads._lister: `interactions.listing` rows
    **{
        ("get", f"/v1/profiles/{{profile_id}}/{what}"): {
            "200": _json({"type": "array", "items": _ROW})
        }
        for what in interactions.LISTS
    },
    # routes_reads.segment_members streams NDJSON only
    ("get", "/v1/segments/{segment_id}/members"): {
        "200": {
            "description": "One JSON object per member and line, streamed.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
}
