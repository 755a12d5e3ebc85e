"""The HTTP app (FastAPI): admin, writes and reads of API.md, wired to one runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import ValidationError
from projections import read_models
from services import (
    api_keys,
    asyncapi,
    auth,
    openapi_docs,
    routes_admin,
    routes_health,
    routes_imports,
    routes_pixel,
    routes_reads,
    routes_subscriptions,
    routes_writes,
)
from services.body_limit import BodyLimit
from services.failures import Failures
from services.http_common import document_bodies, http_error, invalid_domain, invalid_request
from services.import_worker import ImportWorker
from services.metrics import HttpMetrics, Measured, metrics
from services.nul_guard import RefuseNul
from services.projector import Projector
from services.runtime import open_runtime
from services.settings import Settings

log = structlog.get_logger(__name__)


def create_app(
    settings: Settings, *, ingest: bool = True, query: bool = True, projector: bool = False
) -> FastAPI:
    """The app for `serve` (all three roles) or one role of the distributed deployment."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await open_runtime(settings)
        app.state.rt = rt
        try:
            async with rt.pool.acquire() as conn:
                await api_keys.install(conn)
                written = await api_keys.bootstrap(conn, settings.data_dir, settings.bootstrap_key)
        except BaseException:  # e.g. a malformed bootstrap key: stop what the start began
            await rt.close()
            raise
        if written is not None:
            log.info("auth.admin_key_written", path=str(written), read_it_with=f"cat {written}")
        app.state.auth = api_keys.Authenticator(rt.pool)
        stop = asyncio.Event()
        roles: dict[str, asyncio.Task[None]] = {}
        app.state.roles = roles
        if projector:
            runner = Projector(
                rt.pool,
                rt.log,
                read_models.NAME,
                read_models.project,
                # the API shares this event loop: a batch's fold holds it, so batches stay at
                # their head-of-log size even while catching up
                max_batch=0,
                dedupe_window=settings.dedupe_window,
            )
            app.state.projector = runner
            roles["projector"] = _role("projector", runner.run(stop))
        if ingest:
            app.state.import_worker = ImportWorker(rt.pool, rt.importer)
            roles["import_worker"] = _role("import_worker", app.state.import_worker.run(stop))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*roles.values(), return_exceptions=True)
            await rt.close()

    app = FastAPI(title="Subscriber Profiles", version="1", lifespan=lifespan)
    app.add_middleware(RefuseNul)  # a NUL in a path or query: 422 before any route
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Failures)  # a failure anywhere gets a problem document
    app.state.http_metrics = HttpMetrics()
    app.add_middleware(Measured, metrics=app.state.http_metrics)  # outermost: counts them too
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ValidationError, invalid_domain)
    app.add_exception_handler(auth.AuthError, auth.auth_error_handler)

    async def asyncapi_document() -> dict[str, Any]:
        """The AsyncAPI document of this deployment's topics."""
        return asyncapi.document(settings.events_topic, settings.intake_topic)

    app.add_api_route("/asyncapi.json", asyncapi_document, methods=["GET"], tags=["docs"])
    document_bodies(app)
    openapi_docs.document_answers(app)  # after document_bodies: revises the whole document
    app.include_router(routes_health.router())
    app.add_api_route("/metrics", metrics, methods=["GET"], tags=["health"])
    if ingest:
        app.include_router(routes_admin.router())
        app.include_router(routes_writes.router())
        app.include_router(routes_imports.router())
        app.include_router(routes_subscriptions.admin_router())
        app.include_router(routes_subscriptions.write_router())
        app.include_router(routes_pixel.router())
    if query:
        app.include_router(routes_reads.router())
        app.include_router(routes_subscriptions.read_router())
    return app


def _role(name: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A background role of the process, logged if it ever ends on an error: it waits out
    outages, so an error here is a bug, and `/healthz` then reports the process unhealthy."""
    task = asyncio.create_task(work, name=name)

    def ended(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            error = done.exception()
            log.error("role.crashed", role=name, error=type(error).__name__)

    task.add_done_callback(ended)
    return task
