"""Read routes: a profile by any of its identifiers (R5, R6), grouped as tabs (R2); export (R27)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from contracts.api import (
    ContactTab,
    FieldError,
    HistoryEntry,
    HistoryPage,
    Problem,
    ProfileTabs,
    ProfileView,
)
from domain.errors import ValidationError
from domain.fields import parse_text, tabs
from domain.history import KINDS
from domain.identity import md5_id, normalise_email, normalise_phone, placeholder_email, xxh_id
from domain.profile import ProfileState
from projections import history, interactions, profiles, subscriptions
from projections.batches import dead_letters_of
from services import auth, identity, structure
from services.http_common import (
    ProblemResponse,
    about_profile,
    caught_up,
    consistency_headers,
    field_errors,
    model_response,
    not_found,
    problem,
    runtime,
)

Token = Annotated[str | None, Header(alias="Consistency-Token")]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem},
    400: {"model": Problem},
}


def router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["reads"])
    for path, endpoint in (
        ("/profiles/{profile_id}", get_profile),
        ("/profiles/by-md5/{md5}", get_by_md5),
        ("/profiles/by-xxh/{xxh}", get_by_xxh),
        ("/databases/{database_id}/profiles/by-email/{email}", get_by_email),
        ("/databases/{database_id}/profiles/by-phone/{phone}", get_by_phone),
        ("/databases/{database_id}/profiles/by-field/{field}/{value}", get_by_field),
    ):
        r.add_api_route(
            path, endpoint, methods=["GET"], response_model=ProfileView, responses=_RESPONSES
        )
    r.add_api_route(
        "/profiles/{profile_id}/export", export_profile, methods=["GET"], responses=_RESPONSES
    )
    for what in interactions.LISTS:
        r.add_api_route(
            f"/profiles/{{profile_id}}/{what}",
            _lister(what),
            methods=["GET"],
            responses=_RESPONSES,
            name=f"profile_{what.replace('-', '_')}",
            summary=f"A profile's {what} (R23-R25)",
        )
    r.add_api_route(
        "/segments/{segment_id}/members",
        segment_members,
        methods=["GET"],
        responses={200: {"content": {"application/x-ndjson": {}}}},
    )
    r.add_api_route(
        "/profiles/{profile_id}/history",
        get_history,
        methods=["GET"],
        response_model=HistoryPage,
        responses=_RESPONSES,
    )
    return r


async def get_profile(
    profile_id: UUID, request: Request, _: auth.Reader, token: Token = None
) -> Any:
    """The current profile; with a `Consistency-Token`, once the read models reached it."""
    return await _read(request, token, lambda conn: profiles.get(conn, profile_id))


async def get_by_md5(md5: str, request: Request, _: auth.Reader, token: Token = None) -> Any:
    """A profile by its MD5 identifier (R5)."""
    return await _read(request, token, lambda conn: profiles.find(conn, "md5", md5.lower(), None))


async def get_by_xxh(xxh: str, request: Request, _: auth.Reader, token: Token = None) -> Any:
    """A profile by its XXH identifier (R5)."""
    return await _read(request, token, lambda conn: profiles.find(conn, "xxh", xxh.lower(), None))


async def get_by_email(
    database_id: str, email: str, request: Request, _: auth.Reader, token: Token = None
) -> Any:
    """A profile of a database by email, compared as R6 says (trimmed, case-insensitive)."""
    value = normalise_email(email)
    return await _read(
        request, token, lambda conn: profiles.find(conn, "email", value, database_id)
    )


async def get_by_phone(
    database_id: str, phone: str, request: Request, _: auth.Reader, token: Token = None
) -> Any:
    """A profile of a database by phone, normalised to E.164 (R6)."""
    value = normalise_phone(phone)
    return await _read(
        request, token, lambda conn: profiles.find(conn, "phone", value, database_id)
    )


async def get_by_field(
    database_id: str,
    field: str,
    value: str,
    request: Request,
    _: auth.Reader,
    token: Token = None,
) -> Any:
    """A profile of a database by the value of a custom field marked unique (R6), compared in
    the field's canonical form (a Number "007" finds 7)."""
    async with runtime(request).pool.acquire() as conn:
        database = await structure.load(conn, database_id)
    if database is None:
        return problem(404, "Database not found")
    definition = database.fields.get(field)
    if definition is None or not definition.unique:
        rule = "unknown_field" if definition is None else "field_not_unique"
        return problem(
            422, "Invalid request", errors=[FieldError(field="field", rule=rule, value=field)]
        )
    try:
        canonical = parse_text(definition, value)
    except ValidationError as bad:
        return problem(422, "Invalid request", errors=field_errors(bad.violations))

    async def find(conn: asyncpg.Connection) -> ProfileState | None:
        owner = await identity.owner(conn, database_id, f"field:{field}", str(canonical))
        return None if owner is None else await profiles.get(conn, owner)

    return await _read(request, token, find)


async def export_profile(
    profile_id: UUID, request: Request, _: auth.Reader, token: Token = None
) -> Any:
    """Everything stored about one profile, as one JSON document (R27)."""

    async def export(conn: asyncpg.Connection, state: ProfileState) -> dict[str, Any]:
        return {
            "exported_at": datetime.now(UTC).isoformat(),
            "profile": view(state).model_dump(mode="json"),
            "read_models": {
                "profiles": await profiles.raw(conn, profile_id),
                "subscriptions": await subscriptions.raw(conn, profile_id),
                "subscription_ledger": await subscriptions.raw_ledger(conn, profile_id),
                "history": await history.raw(conn, profile_id),
                **await interactions.raw(conn, profile_id),
                "dead_letters": await dead_letters_of(conn, profile_id),
            },
            "ingest": await identity.raw(conn, profile_id),
        }

    found = await about_profile(request, token, profile_id, export)
    if isinstance(found, ProblemResponse):
        return found
    document, reached = found
    headers = {"Content-Disposition": f'attachment; filename="profile-{profile_id}.json"'}
    headers |= consistency_headers(reached)
    return JSONResponse(document, headers=headers)


def _lister(what: str) -> Any:
    async def listing(
        profile_id: UUID, request: Request, _: auth.Reader, token: Token = None
    ) -> Any:
        found = await about_profile(
            request, token, profile_id, lambda conn, _: interactions.listing(conn, what, profile_id)
        )
        if isinstance(found, ProblemResponse):
            return found
        rows, reached = found
        return JSONResponse(rows, headers=consistency_headers(reached))

    return listing


async def segment_members(
    segment_id: str, request: Request, _: auth.Reader, token: Token = None
) -> Response:
    """Every member of a static segment, one JSON object per line, streamed (R23)."""
    rt = runtime(request)
    reached = await caught_up(rt, token)
    if isinstance(reached, ProblemResponse):
        return reached
    pool = rt.pool

    async def lines() -> AsyncIterator[bytes]:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            async for chunk in interactions.members(conn, segment_id):
                yield b"".join(orjson.dumps(row) + b"\n" for row in chunk)

    headers = consistency_headers(reached)
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)


async def get_history(
    profile_id: UUID,
    request: Request,
    _: auth.Reader,
    kind: Annotated[list[str] | None, Query(description="One or more kinds; none: all.")] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    token: Token = None,
) -> Any:
    """A profile's timeline, newest first; without a period, the last 7 days (R18, R19)."""
    kinds = kind or []
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        errors = [FieldError(field="kind", rule="unknown_kind", value=k) for k in unknown]
        return problem(422, "Invalid request", f"kinds are {', '.join(KINDS)}", errors)
    for name, moment in (("from", since), ("to", until)):
        if moment is not None and moment.tzinfo is None:
            error = FieldError(field=name, rule="timezone_required", value=moment.isoformat())
            return problem(422, "Invalid request", errors=[error])
    until = _held(until) if until else datetime.now(UTC)
    # R19: no period, the last 7 days
    since = _held(since) if since else max(_FIRST + _WEEK, until) - _WEEK
    if since > until:  # an empty page would read as "nothing happened"
        error = FieldError(field="from", rule="after_to", value=since.isoformat())
        return problem(422, "Invalid request", "`from` is later than `to`.", [error])
    try:
        found = await about_profile(
            request,
            token,
            profile_id,
            lambda conn, _: history.read(conn, profile_id, kinds, since, until, limit, cursor),
        )
    except ValueError as bad:  # the cursor (`history.read`)
        error = FieldError(field="cursor", rule="cursor_invalid", value=None)
        return problem(400, "Bad cursor", str(bad), [error])
    if isinstance(found, ProblemResponse):
        return found
    page, reached = found
    body = HistoryPage(
        profile_id=profile_id,
        since=since,
        until=until,
        entries=tuple(HistoryEntry(**e) for e in page.entries),
        cursor=page.cursor,
    )
    return model_response(body, headers=consistency_headers(reached))


# the span Python's datetime holds in UTC (PostgreSQL's is wider): a period reaching past it
# is read as reaching to its end, the same lines
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_WEEK = timedelta(days=7)


def _held(moment: datetime) -> datetime:
    """`moment` in UTC, within _FIRST.._LAST (year 1 at +14:00 is year 0 in UTC: it was a 500)."""
    try:
        return min(max(moment.astimezone(UTC), _FIRST), _LAST)
    except OverflowError:  # only at either end of the span
        return _FIRST if moment.year == _FIRST.year else _LAST


async def _read(request: Request, token: str | None, find: Any) -> Any:
    rt = runtime(request)
    reached = await caught_up(rt, token)
    if isinstance(reached, ProblemResponse):
        return reached
    try:
        async with rt.pool.acquire() as conn:
            state = await find(conn)
    except ValidationError:
        state = None  # a malformed email or phone names no profile
    if state is None:
        return not_found(reached)
    headers = consistency_headers(reached)
    return model_response(view(state), headers=headers)


def view(state: ProfileState) -> ProfileView:
    """The public shape of a profile."""
    pid = state.profile_id
    email = state.email or placeholder_email(pid)
    grouped = tabs(state.fields, state.custom)
    return ProfileView(
        profile_id=pid,
        database_id=state.database_id,
        md5_id=md5_id(pid),
        xxh_id=xxh_id(pid),
        email=email,
        phones=state.phones,
        fields=dict(state.fields),
        custom=dict(state.custom),
        tabs=ProfileTabs(
            main=grouped["main"],
            personal=grouped["personal"],
            contact=ContactTab(email=email, phones=state.phones),
            reg=grouped["reg"],
            tracked=grouped["tracked"],
            additional=grouped["additional"],
        ),
        status=state.status,
        import_mode=state.import_mode,
        created_at=state.created_at,
        updated_at=state.updated_at,
        version=state.version,
    )
