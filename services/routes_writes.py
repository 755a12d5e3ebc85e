"""Write routes: imports (single, batch), functional updates, global status, deletion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Request
from pydantic import ValidationError as BodyError

from contracts import (
    Event,
    ProfileDeleted,
    ProfileStatusChanged,
    ProfileStatusChangedData,
    ProfileUpdated,
    ProfileUpdatedData,
)
from contracts.api import (
    MAX_BATCH_ITEMS,
    BatchImportRequest,
    BatchImportResponse,
    BatchItemResult,
    FieldError,
    ImportProfileRequest,
    ImportProfileResponse,
    Problem,
    StatusRequest,
    UpdateProfileRequest,
    WriteResponse,
)
from domain.database import DatabaseState
from domain.errors import ValidationError, Violation, collect
from domain.imports import RefKind
from domain.updates import UpdateItem, increment_violations, prepare_update
from projections import profiles
from services import auth, consistency, identity, structure
from services.event_ids import new_id
from services.http_common import (
    ProblemResponse,
    body_errors,
    each_valid,
    every_error,
    field_errors,
    json_body,
    model_response,
    problem,
    read_body,
    request_body,
    runtime,
)
from services.imports import DatabaseNotFoundError, ItemOutcome, check, item_from_request
from services.runtime import Runtime

SOURCE = "/v1/profiles"


def router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["writes"])
    r.add_api_route(
        "/databases/{database_id}/profiles", import_profile, methods=["POST"], status_code=201,
        response_model=ImportProfileResponse,
        responses={404: {"model": Problem}, 409: {"model": Problem}, 422: {"model": Problem}},
        openapi_extra=request_body(ImportProfileRequest),  # read by the route itself
    )  # fmt: skip
    r.add_api_route(
        "/databases/{database_id}/profiles:batch", import_batch, methods=["POST"],
        response_model=BatchImportResponse,
        responses={404: {"model": Problem}, 413: {"model": Problem}, 422: {"model": Problem}},
        openapi_extra=request_body(BatchImportRequest),  # read by the route itself
    )  # fmt: skip
    r.add_api_route(
        "/profiles/{profile_id}", update_profile, methods=["PATCH"],
        response_model=WriteResponse,
        responses={404: {"model": Problem}, 409: {"model": Problem}, 422: {"model": Problem}},
        openapi_extra=request_body(UpdateProfileRequest),  # read by the route itself
    )  # fmt: skip
    r.add_api_route(
        "/profiles/{profile_id}/status", set_status, methods=["PUT"],
        response_model=WriteResponse, responses={404: {"model": Problem}},
    )  # fmt: skip
    r.add_api_route(
        "/profiles/{profile_id}", delete_profile, methods=["DELETE"],
        response_model=WriteResponse, responses={404: {"model": Problem}},
    )  # fmt: skip
    return r


async def import_profile(database_id: str, request: Request, _: auth.Writer) -> Any:
    """Import one profile: create it, or update the one its identifiers match (R3-R6, R21)."""
    rt = runtime(request)
    body = await read_body(
        request, ImportProfileRequest, lambda rest: _import_rules(rt, database_id, rest)
    )
    if isinstance(body, ProblemResponse):
        return body
    try:
        result = await rt.importer.run(
            database_id, [item_from_request(body)], body.mode, locate=body.geo, source=SOURCE
        )
    except DatabaseNotFoundError:
        return problem(404, "Database not found")
    outcome = result.outcomes[0]
    if outcome.violations:
        return _rejected(outcome)
    assert outcome.profile_id is not None
    response = ImportProfileResponse(
        profile_id=outcome.profile_id,
        created=outcome.created,
        suppressed=outcome.suppressed,
        consistency_token=consistency.token(result.positions),
    )
    return model_response(response, 201 if outcome.created else 200)


async def import_batch(database_id: str, request: Request, _: auth.Writer) -> Any:
    """Import up to 1,000 profiles; a result per item, a bad item rejects only itself."""
    document = await json_body(request)
    if isinstance(document, ProblemResponse):
        return document
    items = document.get("items") if isinstance(document, dict) else None
    if isinstance(items, list) and len(items) > MAX_BATCH_ITEMS:
        detail = f"{len(items)} items; a batch holds at most {MAX_BATCH_ITEMS}."
        return problem(413, "Too many items", detail)
    try:  # the envelope as a whole; each item on its own below
        BatchImportRequest.model_validate({**document, "items": []} if items else document)
    except BodyError as error:
        return problem(422, "Invalid request", errors=body_errors(error))
    assert isinstance(items, list)
    if not items:  # nothing to give a result for: the request itself is wrong
        empty = FieldError(field="items", rule="too_short", value=[])
        return problem(422, "Invalid request", "A batch holds 1 to 1,000 items.", [empty])
    valid, invalid = each_valid(ImportProfileRequest, items)
    rt = runtime(request)
    async with rt.pool.acquire() as conn:
        database = await structure.load(conn, database_id)
    if database is None:
        return problem(404, "Database not found")
    good = [(index, item_from_request(body)) for index, body in valid]
    bad = [  # an item of the wrong shape: its shape errors and the rules its other parts break
        BatchItemResult(
            index=r.index,
            outcome="rejected",
            errors=(*r.errors, *field_errors(_broken(database, r.rest))),
        )
        for r in invalid
    ]
    result = await rt.importer.commit(
        check(database, [item for _, item in good]),
        "api",  # each item may say otherwise (`mode`, `geo`)
        locate=True,
        source=SOURCE,
    )
    checked = [_result(o, good[o.index][0]) for o in result.outcomes]
    results = tuple(sorted([*checked, *bad], key=lambda r: r.index))
    if all(r.outcome == "rejected" for r in results):  # nothing was written: a plain 422
        return problem(422, "Invalid request", errors=every_error("items", results))
    return BatchImportResponse(
        results=results,
        created=sum(r.outcome == "created" for r in results),
        updated=sum(r.outcome == "updated" for r in results),
        rejected=sum(r.outcome == "rejected" for r in results),
        consistency_token=consistency.token(result.positions),
    )


async def update_profile(profile_id: UUID, request: Request, _: auth.Writer) -> Any:
    """Set, unset, increment, add or remove tags, change contacts (R3, R6)."""
    rt = runtime(request)
    body = await read_body(
        request, UpdateProfileRequest, lambda rest: _update_rules(rt, profile_id, rest)
    )
    if isinstance(body, ProblemResponse):
        return body
    async with rt.pool.acquire() as conn, conn.transaction():  # claims and event as one
        database = await _profile_database(conn, profile_id)
        if database is None:
            return problem(404, "Profile not found")
        update = prepare_update(database, _update_item(body))
        if update.increment:  # R3: the sum stays in the type's range, from the value read now
            now_state = await profiles.get(conn, profile_id)
            custom = now_state.custom if now_state is not None else {}
            if broken := increment_violations(update.increment, custom):
                raise ValidationError(broken)
        ref: tuple[RefKind, str] = ("profile_id", str(profile_id))
        resolved = await identity.resolve(
            conn, database.database_id, [identity.Claim(update.claims, ref)]
        )
        if not isinstance(resolved[0], identity.Resolved):
            return problem(409, "Identity conflict", errors=field_errors(resolved[0]))
        if update.email_removed or update.phones_remove:
            await identity.release(
                conn, profile_id, ["email"] if update.email_removed else [], update.phones_remove
            )
        data = ProfileUpdatedData(
            set=update.set, unset=update.unset, custom_set=update.custom_set,
            custom_unset=update.custom_unset, increment=update.increment,
            tags_add=update.tags_add, tags_remove=update.tags_remove, email=update.email,
            email_removed=update.email_removed, phones_add=update.phones_add,
            phones_remove=update.phones_remove,
        )  # fmt: skip
        now = datetime.now(UTC)
        events: list[Event] = [ProfileUpdated(
            id=new_id(), source=SOURCE, time=now, subject=profile_id,
            database_id=database.database_id, data=data,
        )]  # fmt: skip
        if update.email and await identity.suppressed(conn, [update.email]):
            events.append(ProfileStatusChanged(  # R8: a suppressed address is never sendable
                id=new_id(), source=SOURCE, time=now, subject=profile_id,
                database_id=database.database_id,
                data=ProfileStatusChangedData(status="hard_bounced", cause="suppression"),
            ))  # fmt: skip
        staged = await rt.log.stage(conn, events)
    positions = await rt.log.publish(staged)
    return WriteResponse(profile_id=profile_id, consistency_token=consistency.token(positions))


async def set_status(
    profile_id: UUID, body: StatusRequest, request: Request, _: auth.Writer
) -> Any:
    """Change the global status (R7); hard_bounced also suppresses the address (R8)."""
    rt = runtime(request)
    async with rt.pool.acquire() as conn, conn.transaction():  # suppression and event as one
        database_id = await identity.profile_database(conn, profile_id)
        if database_id is None:
            return problem(404, "Profile not found")
        if body.status == "hard_bounced":
            await identity.suppress(conn, [profile_id])
        elif body.status == "subscribed" and await identity.suppressed_profiles(conn, [profile_id]):
            return problem(  # R8: only removing the address from the list makes it sendable
                409,
                "Address suppressed",
                detail="The profile's email is on the suppression list: remove it first "
                "(DELETE /v1/suppressions/{email}).",
                errors=[FieldError(field="status", rule="address_suppressed", value=body.status)],
            )
        event = ProfileStatusChanged(
            id=new_id(), source=SOURCE, time=datetime.now(UTC), subject=profile_id,
            database_id=database_id,
            data=ProfileStatusChangedData(status=body.status, cause="api"),
        )  # fmt: skip
        staged = await rt.log.stage(conn, [event])
    positions = await rt.log.publish(staged)
    return WriteResponse(profile_id=profile_id, consistency_token=consistency.token(positions))


async def delete_profile(profile_id: UUID, request: Request, _: auth.Deleter) -> Any:
    """Delete a profile from every read model and free its identities (R26)."""
    rt = runtime(request)
    now = datetime.now(UTC)
    # one transaction: a crash after freeing the identities but before the event would leave
    # a profile the read models show and a retry could no longer find (404)
    async with rt.pool.acquire() as conn, conn.transaction():
        database_id = await identity.forget(conn, profile_id, now)
        if database_id is None:
            return problem(404, "Profile not found")
        event = ProfileDeleted(
            id=new_id(), source=SOURCE, time=now, subject=profile_id, database_id=database_id
        )
        staged = await rt.log.stage(conn, [event])
    positions = await rt.log.publish(staged)
    return WriteResponse(profile_id=profile_id, consistency_token=consistency.token(positions))


def _update_item(body: UpdateProfileRequest) -> UpdateItem:
    return UpdateItem(
        fields=body.fields,
        custom=body.custom,
        increment=body.increment,
        tags_add={k: tuple(v) for k, v in body.tags_add.items()},
        tags_remove={k: tuple(v) for k, v in body.tags_remove.items()},
        email=body.email,
        email_given="email" in body.model_fields_set,
        phones_add=body.phones_add,
        phones_remove=body.phones_remove,
    )


async def _import_rules(
    rt: Runtime, database_id: str, rest: ImportProfileRequest
) -> tuple[Violation, ...]:
    """The database's rules the well-shaped parts of an import break (none when it is missing:
    its 404 is for a body of the right shape)."""
    async with rt.pool.acquire() as conn:
        database = await structure.load(conn, database_id)
    return () if database is None else _broken(database, rest)


def _broken(database: DatabaseState, body: ImportProfileRequest | None) -> tuple[Violation, ...]:
    """The rules of the database an import body breaks (identities aside: they need a write)."""
    if body is None:
        return ()
    (outcome,) = check(database, [item_from_request(body)]).outcomes
    return () if outcome is None else outcome.violations


async def _update_rules(
    rt: Runtime, profile_id: UUID, rest: UpdateProfileRequest
) -> list[Violation]:
    """The rules the well-shaped parts of an update break (none when there is no such profile:
    its 404 is for a body of the right shape)."""
    async with rt.pool.acquire() as conn:
        database = await _profile_database(conn, profile_id)
    broken: list[Violation] = []
    if database is not None:
        collect(broken, lambda: prepare_update(database, _update_item(rest)), None)
    return broken


async def _profile_database(conn: asyncpg.Connection, profile_id: UUID) -> DatabaseState | None:
    database_id = await identity.profile_database(conn, profile_id)
    return await structure.load(conn, database_id) if database_id else None


def _rejected(outcome: ItemOutcome) -> Any:
    errors = field_errors(outcome.violations)
    if any(v.rule == "identity_conflict" for v in outcome.violations):
        return problem(409, "Identity conflict", errors=errors)
    if any(v.rule == "profile_not_found" for v in outcome.violations):
        return problem(404, "Profile not found", errors=errors)
    return problem(422, "Invalid request", errors=errors)


def _result(outcome: ItemOutcome, index: int) -> BatchItemResult:
    if outcome.violations:
        return BatchItemResult(
            index=index,
            outcome="rejected",
            errors=tuple(field_errors(outcome.violations)),
        )
    return BatchItemResult(
        index=index,
        outcome="created" if outcome.created else "updated",
        profile_id=outcome.profile_id,
        suppressed=outcome.suppressed,
    )
