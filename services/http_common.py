"""What every router shares: the runtime, problem documents, consistency waits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from contracts.api import FieldError, Problem
from domain.errors import ValidationError, Violation
from projections import read_models
from services import consistency
from services.runtime import Runtime

M = TypeVar("M", bound=BaseModel)

PROBLEM = "application/problem+json"


class ProblemResponse(JSONResponse):
    """A JSON response with the RFC 9457 media type."""

    media_type = PROBLEM


def problem(
    status: int, title: str, detail: str | None = None, errors: list[FieldError] | None = None
) -> ProblemResponse:
    body = Problem(title=title, status=status, detail=detail, errors=tuple(errors or ()))
    return ProblemResponse(body.model_dump(mode="json"), status_code=status)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def field_errors(violations: list[Violation] | tuple[Violation, ...]) -> list[FieldError]:
    return [FieldError(field=v.field, rule=v.rule, value=_safe(v.value)) for v in violations]


async def caught_up(rt: Runtime, token: str | None) -> bool | ProblemResponse:
    """Wait for the read models to reach a write's token: True, False (bound passed) or a 400."""
    if token is None:
        return True
    try:
        positions = consistency.parse(token)
    except ValueError as exc:
        return problem(400, "Bad Consistency-Token", str(exc))
    return await consistency.wait(
        rt.pool, read_models.NAME, rt.log.topic, positions, rt.settings.consistency_wait
    )


async def invalid_request(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's locations start with where the value came from ("body", "query"): not a field
    return problem(422, "Invalid request", errors=_field_errors(exc.errors(), skip=1))


# Schemas of bodies that routes read themselves (to check each item on its own): they are not
# in FastAPI's components unless put there; `document_bodies` does, when the app builds its doc.
_BODY_SCHEMAS: dict[str, Any] = {}


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the JSON body of a route that reads it itself."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    _BODY_SCHEMAS.update(schema.pop("$defs", {}))
    _BODY_SCHEMAS[model.__name__] = schema
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def document_bodies(app: FastAPI) -> None:
    """Add the bodies of `request_body` routes to the app's OpenAPI components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in _BODY_SCHEMAS.items():
            schemas.setdefault(name, schema)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def body_errors(error: PydanticError) -> list[FieldError]:
    """A pydantic validation error of a body the route read itself, as problem-document errors."""
    return _field_errors(error.errors(include_url=False), skip=0)


def _field_errors(errors: Sequence[Any], skip: int) -> list[FieldError]:
    return [
        FieldError(
            field=".".join(str(p) for p in e["loc"][skip:]) or "body",
            rule=e["type"],
            value=_safe(e.get("input")),
        )
        for e in errors
    ]


async def json_body(request: Request) -> Any:
    """The request's JSON document, or a 422 problem response when it is not JSON."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return problem(422, "Invalid request", "The body is not JSON.")


def each_valid(
    model: type[M], items: Sequence[Any]
) -> tuple[list[tuple[int, M]], list[tuple[int, tuple[FieldError, ...]]]]:
    """Validate each item of a list on its own: the valid ones and the errors of the others,
    each with its place in the list (one bad item must not reject the rest)."""
    valid: list[tuple[int, M]] = []
    invalid: list[tuple[int, tuple[FieldError, ...]]] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, model.model_validate(item)))
        except PydanticError as error:
            invalid.append((index, tuple(body_errors(error))))
    return valid, invalid


class _ItemResult(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def errors(self) -> tuple[FieldError, ...]: ...


def every_error(collection: str, results: Sequence[_ItemResult]) -> list[FieldError]:
    """The errors of every item, each named by its place in the request (`events.3.type`)."""
    return [
        e.model_copy(update={"field": f"{collection}.{r.index}.{e.field}"})
        for r in results
        for e in r.errors
    ]


async def invalid_domain(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ValidationError)
    return problem(422, "Invalid request", errors=field_errors(exc.violations))


def _safe(value: object) -> Any:
    try:
        orjson.dumps(value)
    except TypeError:
        return str(value)
    return value
