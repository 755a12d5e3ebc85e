"""What every router shares: the runtime, problem documents, consistency waits."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError as PydanticError

from contracts.api import FieldError, Problem
from domain.errors import ValidationError, Violation
from projections import read_models
from services import consistency
from services.runtime import Runtime

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
    errors = [
        FieldError(
            field=".".join(str(p) for p in e["loc"][1:]) or "body",
            rule=e["type"],
            value=_safe(e.get("input")),
        )
        for e in exc.errors()
    ]
    return problem(422, "Invalid request", errors=errors)


def body_errors(error: PydanticError, prefix: str = "") -> list[FieldError]:
    """A pydantic validation error as problem-document errors, field paths under `prefix`."""
    return [
        FieldError(
            field=".".join([*([prefix] if prefix else []), *(str(p) for p in e["loc"])]) or "body",
            rule=e["type"],
            value=_safe(e.get("input")),
        )
        for e in error.errors(include_url=False)
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
