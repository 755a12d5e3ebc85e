"""Resource and subscription routes (R7, R9-R17), and who receives a message."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError as BodyError

from contracts import Consent
from contracts.api import (
    MAX_BATCH_ITEMS,
    ChannelFieldBody,
    EventResult,
    EventsRequest,
    EventsResponse,
    FieldError,
    LedgerEntry,
    Problem,
    RecipientView,
    ResourcePatch,
    ResourceRequest,
    ResourceView,
    SubscribeRequest,
    SubscriptionPatch,
    SubscriptionView,
    SubscriptionWriteResponse,
)
from contracts.intake import PublicEvent
from domain.errors import ValidationError
from domain.resources import FieldSpec, Resource, define_resource
from domain.subscriptions import NoRecipient, recipient
from projections import profiles
from projections import subscriptions as read
from services import auth, consistency, identity, resources
from services.http_common import (
    ProblemResponse,
    about_profile,
    body_errors,
    caught_up,
    consistency_headers,
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
from services.intake import Intake
from services.subscribing import (
    Change,
    ExistsError,
    NewSubscription,
    NotFoundError,
    Outcome,
    Subscriptions,
)

Token = Annotated[str | None, Header(alias="Consistency-Token")]
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": Problem}, 422: {"model": Problem}}


def admin_router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["admin"])
    r.add_api_route(
        "/resources",
        create_resource,
        methods=["POST"],
        status_code=201,
        response_model=ResourceView,
        responses={409: {"model": Problem}, **_ERRORS},
    )
    r.add_api_route(
        "/resources/{resource_id}",
        get_resource,
        methods=["GET"],
        response_model=ResourceView,
        responses=_ERRORS,
    )
    r.add_api_route(
        "/resources/{resource_id}",
        patch_resource,
        methods=["PATCH"],
        response_model=ResourceView,
        responses=_ERRORS,
    )
    return r


def write_router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["subscriptions"])
    r.add_api_route(
        "/profiles/{profile_id}/subscriptions",
        subscribe,
        methods=["POST"],
        status_code=201,
        response_model=SubscriptionWriteResponse,
        responses={409: {"model": Problem}, **_ERRORS},
        openapi_extra=request_body(SubscribeRequest),  # read by the route itself
    )
    r.add_api_route(
        "/profiles/{profile_id}/subscriptions/{sub_id}",
        change,
        methods=["PATCH"],
        response_model=SubscriptionWriteResponse,
        responses=_ERRORS,
        openapi_extra=request_body(SubscriptionPatch),  # read by the route itself
    )
    r.add_api_route(
        "/events",
        post_events,
        methods=["POST"],
        response_model=EventsResponse,
        responses={422: {"model": Problem}},
        tags=["events"],
        openapi_extra=request_body(EventsRequest),
    )
    r.add_api_route(
        "/profiles/{profile_id}/subscriptions/{sub_id}",
        delete,
        methods=["DELETE"],
        response_model=SubscriptionWriteResponse,
        responses=_ERRORS,
    )
    return r


def read_router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["reads"])
    r.add_api_route(
        "/profiles/{profile_id}/subscriptions",
        list_subscriptions,
        methods=["GET"],
        response_model=list[SubscriptionView],
        responses=_ERRORS,
    )
    r.add_api_route(
        "/resources/{resource_id}/recipient",
        who_receives,
        methods=["GET"],
        response_model=RecipientView,
        responses=_ERRORS,
    )
    return r


async def create_resource(body: ResourceRequest, request: Request, _: auth.Admin) -> Any:
    """Create a resource with its channels, categories, custom channel fields and options."""
    resource = define_resource(
        body.resource_id,
        body.database_id,
        body.name,
        body.channels,
        body.categories,
        [FieldSpec(f.name, f.type, f.options) for f in body.custom_fields],
        body.raise_priority,
        body.opt_in,
    )
    rt = runtime(request)
    async with rt.pool.acquire() as conn, conn.transaction():  # the resource and its event
        try:
            event = await resources.create(conn, resource)
        except ValidationError as bad:
            taken = any(v.rule == "resource_exists" for v in bad.violations)
            if taken:
                return problem(409, "Resource exists", errors=field_errors(bad.violations))
            raise
        staged = await rt.log.stage(conn, [event])
    positions = await rt.log.publish(staged)
    return _resource_response(resource, consistency.token(positions), 201)


async def get_resource(resource_id: str, request: Request, _: auth.Admin) -> Any:
    """A resource's configuration, as the intake enforces it."""
    async with runtime(request).pool.acquire() as conn:
        resource = await resources.load(conn, resource_id)
    return problem(404, "Resource not found") if resource is None else _resource_view(resource)


async def patch_resource(
    resource_id: str, body: ResourcePatch, request: Request, _: auth.Admin
) -> Any:
    """Change a resource; absent parts stay."""
    rt = runtime(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        current = await resources.load(conn, resource_id, lock=True)
        if current is None:
            return problem(404, "Resource not found")
        fields = (
            [FieldSpec(f.name, f.type, f.options) for f in body.custom_fields]
            if body.custom_fields is not None
            else [FieldSpec(f.name, f.type, f.options) for f in current.custom_fields.values()]
        )
        resource = define_resource(
            resource_id,
            current.database_id,
            body.name or current.name,
            body.channels if body.channels is not None else current.channels,
            body.categories if body.categories is not None else current.categories,
            fields,
            current.raise_priority if body.raise_priority is None else body.raise_priority,
            body.opt_in or current.opt_in,
        )
        event = await resources.update(conn, resource)
        staged = await rt.log.stage(conn, [event])
    positions = await rt.log.publish(staged)
    return _resource_response(resource, consistency.token(positions), 200)


async def subscribe(profile_id: UUID, request: Request, _: auth.Writer) -> Any:
    """Add a subscription (R10-R17); when a limit is hit an existing one is replaced (R14)."""
    service = _service(request)
    body = await read_body(
        request, SubscribeRequest, lambda rest: service.add_rules(profile_id, _new(rest))
    )
    if isinstance(body, ProblemResponse):
        return body
    try:
        outcome = await service.add(profile_id, _new(body))
    except NotFoundError:
        return problem(404, "Profile not found")
    except ExistsError as exists:
        return problem(409, "Subscription exists", f"sub_id {exists.sub_id}")
    return _write_response(outcome, 201)


async def change(profile_id: UUID, sub_id: UUID, request: Request, _: auth.Writer) -> Any:
    """Change a subscription's status, priority, categories or channel fields."""
    service = _service(request)
    body = await read_body(
        request,
        SubscriptionPatch,
        lambda rest: service.change_rules(profile_id, sub_id, _change(rest)),
    )
    if isinstance(body, ProblemResponse):
        return body
    try:
        outcome = await service.change(profile_id, sub_id, _change(body))
    except NotFoundError as missing:
        return problem(404, "Not found", str(missing))
    return _write_response(outcome, 200)


async def delete(profile_id: UUID, sub_id: UUID, request: Request, _: auth.Deleter) -> Any:
    """Delete a subscription (soft: it counts toward the limits until replaced, R14)."""
    try:
        outcome = await _service(request).delete(profile_id, sub_id)
    except NotFoundError as missing:
        return problem(404, "Not found", str(missing))
    return _write_response(outcome, 200)


async def post_events(request: Request, _: auth.Writer) -> Any:
    """Events of upstream services (R18): checked, resolved, located and appended.

    Each event is checked on its own: a bad one (unknown type, wrong shape, broken data, no
    such profile) is rejected with its errors and the others go on. When every event of the
    request is rejected, nothing was done: the answer is a 422 problem document naming each
    error (`events.N.…`), as for any other write.
    """
    document = await json_body(request)
    if isinstance(document, ProblemResponse):
        return document
    raw = document.get("events") if isinstance(document, dict) else None
    if (
        not isinstance(raw, list)
        or not raw
        or len(raw) > MAX_BATCH_ITEMS
        or set(document) != {"events"}
    ):
        try:  # the envelope is wrong: say how, as the schema does
            EventsRequest.model_validate(document)
        except BodyError as error:
            return problem(422, "Invalid request", errors=body_errors(error))
    assert isinstance(raw, list)
    parsed, invalid = each_valid(PublicEvent, raw)
    refused = [EventResult(index=r.index, outcome="rejected", errors=r.errors) for r in invalid]
    rt = runtime(request)
    outcomes, positions = await Intake(rt.pool, rt.log, rt.geo).accept([e for _, e in parsed])
    results = sorted(
        [
            *refused,
            *(
                EventResult(
                    index=parsed[o.index][0],
                    outcome=o.outcome,
                    profile_id=o.profile_id,
                    subscription_status=o.status,
                    errors=tuple(field_errors(o.violations)),
                )
                for o in outcomes
            ),
        ],
        key=lambda r: r.index,
    )
    if all(r.outcome == "rejected" for r in results):  # nothing was done: a plain 422
        return problem(422, "Invalid request", errors=every_error("events", results))
    return EventsResponse(results=tuple(results), consistency_token=consistency.token(positions))


async def list_subscriptions(
    profile_id: UUID,
    request: Request,
    _: auth.Reader,
    token: Token = None,
) -> Any:
    """The profile's subscription list with each one's consent history."""

    async def listed(
        conn: asyncpg.Connection, _: object
    ) -> tuple[list[read.StoredSubscription], dict[UUID, list[dict[str, Any]]]]:
        stored = (await read.load(conn, [profile_id])).get(profile_id, [])
        return stored, await read.ledger(conn, profile_id)

    found = await about_profile(request, token, profile_id, listed)
    if isinstance(found, ProblemResponse):
        return found
    (stored, history), reached = found
    views = [
        SubscriptionView(
            sub_id=s.subscription.sub_id,
            resource_id=s.subscription.resource_id,
            channel=s.subscription.channel,
            contact=s.subscription.contact,
            status=s.subscription.status,
            priority=s.subscription.priority,
            categories=dict(s.subscription.categories),
            fields=dict(s.subscription.fields),
            custom=dict(s.subscription.custom),
            deleted=s.subscription.deleted,
            created_at=s.subscription.created_at,
            updated_at=s.updated_at,
            history=tuple(LedgerEntry(**e) for e in history.get(s.subscription.sub_id, [])),
        ).model_dump(mode="json")
        for s in stored
    ]
    return JSONResponse(views, headers=consistency_headers(reached))


async def who_receives(
    resource_id: str,
    request: Request,
    _: auth.Reader,
    profile_id: Annotated[UUID, Query()],
    channel: Annotated[str, Query()],
    category: Annotated[str | None, Query()] = None,
    token: Token = None,
) -> Any:
    """The contact a message would go to, or a machine-readable reason why none (R7, R12, R16)."""
    base = RecipientView(
        profile_id=profile_id, resource_id=resource_id, channel=channel, category=category
    )
    rt = runtime(request)
    reached = await caught_up(rt, token)
    if isinstance(reached, ProblemResponse):
        return reached
    headers = consistency_headers(reached)
    async with rt.pool.acquire() as conn:
        resource = await resources.load(conn, resource_id)
        if resource is None:
            return problem(404, "Resource not found")
        if channel not in resource.channels:
            return problem(
                422,
                "Invalid request",
                errors=[FieldError(field="channel", rule="unknown_channel", value=channel)],
            )
        if category is not None and category not in resource.categories:
            return problem(
                422,
                "Invalid request",
                errors=[FieldError(field="category", rule="unknown_category", value=category)],
            )
        profile = await profiles.get(conn, profile_id)
        if profile is None:
            gone = _with(base, reason="profile_not_found", detail="no such profile")
            return model_response(gone, headers=headers)
        stored = (await read.load(conn, [profile_id])).get(profile_id, [])
        addresses = [s.subscription.contact for s in stored if s.subscription.channel == "email"]
        suppressed = await identity.suppressed(conn, addresses)  # R8
    chosen = recipient(
        profile.status,
        [s.subscription for s in stored],
        resource_id,
        channel,
        category,
        suppressed,
    )
    if isinstance(chosen, NoRecipient):
        answer = _with(base, reason=chosen.reason, detail=chosen.detail)
    else:
        answer = _with(base, sub_id=chosen.sub_id, contact=chosen.contact, priority=chosen.priority)
    return model_response(answer, headers=headers)


def _new(body: SubscribeRequest) -> NewSubscription:
    return NewSubscription(
        resource_id=body.resource_id,
        channel=body.channel,
        contact=body.contact,
        priority=body.priority,
        categories=body.categories,
        fields=body.fields,
        custom=body.custom,
        consent=Consent(how=body.how, ip=body.ip),
    )


def _change(body: SubscriptionPatch) -> Change:
    return Change(
        status=body.status,
        priority=body.priority,
        categories=body.categories,
        fields=body.fields,
        custom=body.custom,
        consent=Consent(how=body.how, ip=body.ip),
    )


def _with(view: RecipientView, **changes: Any) -> RecipientView:
    return view.model_copy(update=changes)


def _service(request: Request) -> Subscriptions:
    rt = runtime(request)
    return Subscriptions(rt.pool, rt.log)


def _write_response(outcome: Outcome, status: int) -> Response:
    body = SubscriptionWriteResponse(
        sub_id=outcome.sub_id,
        evicted=outcome.evicted,
        priority=outcome.priority,
        status=outcome.status,
        consistency_token=consistency.token(outcome.positions),
    )
    return model_response(body, status)


def _resource_view(resource: Resource) -> ResourceView:
    return ResourceView(
        resource_id=resource.resource_id,
        database_id=resource.database_id,
        name=resource.name,
        channels=resource.channels,
        categories=resource.categories,
        custom_fields=tuple(
            ChannelFieldBody(name=f.name, type=f.type, options=list(f.options) or None)
            for f in resource.custom_fields.values()
        ),
        raise_priority=resource.raise_priority,
        opt_in=resource.opt_in,
    )


def _resource_response(resource: Resource, token: str, status: int) -> Response:
    return model_response(_resource_view(resource), status, {"Consistency-Token": token})
