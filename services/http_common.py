"""What every router shares: the runtime, problem documents, consistency waits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts.api import FieldError, Problem
from contracts.text import nul_places
from domain.errors import ValidationError, Violation
from domain.profile import ProfileState
from projections import profiles, read_models
from services import consistency
from services.runtime import Runtime

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

PROBLEM = "application/problem+json"


class ProblemResponse(JSONResponse):
    """A JSON response with the RFC 9457 media type."""

    media_type = PROBLEM


def model_response(
    body: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A model as its JSON body, serialised once by pydantic (not dumped to Python values and
    then encoded again by `json`: a read's largest cost after the query)."""
    return Response(body.model_dump_json(), status_code, headers, media_type="application/json")


def problem(
    status: int, title: str, detail: str | None = None, errors: list[FieldError] | None = None
) -> ProblemResponse:
    body = Problem(title=title, status=status, detail=detail, errors=tuple(errors or ()))
    return ProblemResponse(body.model_dump(mode="json"), status_code=status)


def not_found(reached: bool) -> ProblemResponse:
    """404, saying `Consistency: behind` when the wait for a token ran out first: the profile
    may be one the write behind the token created, not projected yet."""
    response = problem(404, "Profile not found")
    response.headers.update(consistency_headers(reached))
    return response


def consistency_headers(reached: bool) -> dict[str, str]:
    """`Consistency: behind` when the wait for a read's token ran out first, else nothing."""
    return {} if reached else {"Consistency": "behind"}


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def field_errors(violations: Sequence[Violation]) -> list[FieldError]:
    return [FieldError(field=v.field, rule=v.rule, value=_safe(v.value)) for v in violations]


async def caught_up(rt: Runtime, token: str | None) -> bool | ProblemResponse:
    """Wait for the read models to reach a write's token: True, False (bound passed) or a 400."""
    if token is None:
        return True
    try:
        positions = consistency.parse(token)
    except ValueError as exc:
        bad = FieldError(field="Consistency-Token", rule="token_invalid", value=None)
        return problem(400, "Bad Consistency-Token", str(exc), [bad])
    return await consistency.wait(
        rt.pool, read_models.NAME, rt.log.topic, positions, rt.settings.consistency_wait
    )


async def about_profile(
    request: Request,
    token: str | None,
    profile_id: UUID,
    read: Callable[[asyncpg.Connection, ProfileState], Awaitable[T]],
) -> tuple[T, bool] | ProblemResponse:
    """A read about one profile: once the write behind `token` is applied (a 400 for a bad
    token), what `read` makes of the profile on the connection that found it, and whether the
    token was reached (`consistency_headers`); a 404 problem when the profile is not there."""
    rt = runtime(request)
    reached = await caught_up(rt, token)
    if isinstance(reached, ProblemResponse):
        return reached
    async with rt.pool.acquire() as conn:
        state = await profiles.get(conn, profile_id)
        if state is None:
            return not_found(reached)
        return await read(conn, state), reached


async def http_error(_: Request, exc: Exception) -> ProblemResponse:
    """Starlette's own errors (no such route, a method the route lacks) as problem documents,
    like every other error of the API."""
    assert isinstance(exc, StarletteHTTPException)
    title = HTTPStatus(exc.status_code).phrase
    response = problem(exc.status_code, title, None if exc.detail == title else str(exc.detail))
    response.headers.update(exc.headers or {})  # a 405 says what is Allowed
    return response


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
            field=_where(e, skip),
            rule=e["type"],
            value=None if e["type"] in _NOT_ECHOED else _safe(e.get("input")),
        )
        for e in errors
    ]


_NOT_ECHOED = frozenset({"json_invalid", "nul_character"})


def _where(error: Any, skip: int) -> str:
    # FastAPI places a JSON syntax error at a character offset of the body: not a field
    if error["type"] == "json_invalid":
        return "body"
    return ".".join(str(p) for p in error["loc"][skip:]) or "body"


async def json_body(request: Request) -> Any:
    """The request's JSON document, or a 422 problem response when it is not JSON."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        # the entry a client finds for every other bad body: a field and the rule it breaks
        not_json = FieldError(field="body", rule="json_invalid", value=None)
        return problem(422, "Invalid request", "The body is not JSON.", [not_json])


async def read_body(
    request: Request, model: type[M], rules: Callable[[M], Awaitable[Sequence[Violation]]]
) -> M | ProblemResponse:
    """The JSON body as `model`, or one 422 naming every error of it: its shape errors and the
    rules (`rules`, given the parts of the right shape, see `well_shaped`) those parts break,
    together (a bad email next to an unknown key: both, not only the first kind found)."""
    document = await json_body(request)
    if isinstance(document, ProblemResponse):
        return document
    unstorable = nul_errors(document)
    try:
        body = model.model_validate(document)
    except PydanticError as error:
        rest = well_shaped(model, document, error)
        broken = await rules(rest) if rest is not None and not unstorable else []
        errors = body_errors(error) + field_errors(broken) + unstorable
        return problem(422, "Invalid request", errors=errors)
    if unstorable:
        return problem(422, "Invalid request", errors=unstorable)
    return body


def nul_errors(document: Any) -> list[FieldError]:
    """An error for each string of the document that holds a NUL character, which PostgreSQL
    cannot store (`domain.text`); never its value."""
    return [
        FieldError(field=place or "body", rule="nul_character", value=None)
        for place in nul_places(document)
    ]


def well_shaped(model: type[M], document: Any, error: PydanticError) -> M | None:
    """The parts of a body of the wrong shape that do have the right shape, as `model`: the body
    without each wrongly shaped value, cut at the deepest object key leading to it (`nickname`,
    `increment.visits`); None when that is no body either (a required part is wrong or missing,
    the body is not an object)."""
    if not isinstance(document, dict):
        return None
    places = [tuple(e["loc"]) for e in error.errors(include_url=False)]
    try:
        return model.model_validate(_without(document, places))
    except PydanticError:
        return None


def _without(value: dict[Any, Any], places: Sequence[tuple[Any, ...]]) -> dict[Any, Any]:
    kept = dict(value)
    for key in {p[0] for p in places if p and p[0] in value}:
        inner = [p[1:] for p in places if p and p[0] == key]
        child = value[key]
        if isinstance(child, dict) and all(p and p[0] in child for p in inner):
            kept[key] = _without(child, inner)
        else:
            del kept[key]
    return kept


@dataclass(frozen=True)
class Rejected(Generic[M]):
    """An item of the wrong shape: its place, its shape errors and its parts of the right shape
    (`well_shaped`), for the rules to check."""

    index: int
    errors: tuple[FieldError, ...]
    rest: M | None


def each_valid(
    model: type[M], items: Sequence[Any]
) -> tuple[list[tuple[int, M]], list[Rejected[M]]]:
    """Validate each item of a list on its own: the valid ones and the others, each with its
    place in the list (one bad item must not reject the rest)."""
    valid: list[tuple[int, M]] = []
    invalid: list[Rejected[M]] = []
    for index, item in enumerate(items):
        unstorable = nul_errors(item)
        try:
            checked = model.model_validate(item)
        except PydanticError as error:
            rest = None if unstorable else well_shaped(model, item, error)
            invalid.append(Rejected(index, tuple(body_errors(error) + unstorable), rest))
            continue
        if unstorable:
            invalid.append(Rejected(index, tuple(unstorable), None))
        else:
            valid.append((index, checked))
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
