"""A real HTTP server of the whole service (uvicorn on a free port) for API tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from contracts import CANONICAL_TOPIC
from services import api_keys
from services.http_api import create_app
from services.local._net import free_port
from services.runtime import Runtime
from services.settings import Settings

ADMIN_KEY = "sp_testadmin001_" + "k" * 40


@dataclass(frozen=True)
class Api:
    """A running server and an admin client for it."""

    base: str
    client: httpx.AsyncClient
    settings: Settings
    app: FastAPI

    @property
    def runtime(self) -> Runtime:
        """The server's own runtime (pool, event log, importer), to drive it from a test."""
        rt: Runtime = self.app.state.rt
        return rt

    async def database(self, **fields: dict[str, Any]) -> str:
        """A new database with the given custom fields (name -> FieldSpec body)."""
        database_id = f"db_{uuid.uuid4().hex[:12]}"
        created = await self.client.post(
            "/v1/databases", json={"database_id": database_id, "name": "Test"}
        )
        assert created.status_code == 201, created.text
        for name, spec in fields.items():
            added = await self.client.post(
                f"/v1/databases/{database_id}/fields", json={"name": name, **spec}
            )
            assert added.status_code == 201, added.text
        return database_id

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """Run SQL on the service's database (to look behind the API)."""
        conn = await asyncpg.connect(self.settings.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def key(self, *permissions: str) -> dict[str, str]:
        """Headers carrying a new API key with just these permissions."""
        conn = await asyncpg.connect(self.settings.database_url)
        try:
            _, plaintext = await api_keys.create_key(conn, "test", permissions)
        finally:
            await conn.close()
        return {"Authorization": f"Bearer {plaintext}"}

    async def read(self, path: str, token: str) -> httpx.Response:
        """GET a read path once the write behind `token` is projected."""
        response = await self.client.get(path, headers={"Consistency-Token": token})
        assert "Consistency" not in response.headers, "the projection did not catch up"
        return response


@contextlib.asynccontextmanager
async def serve(
    database_url: str,
    data_dir: Path,
    geoip_db: Path | None = None,
    kafka: str | None = None,
    **overrides: Any,
) -> AsyncIterator[Api]:
    """Run the service (ingest, projector, query) until the block ends: on the PostgreSQL log,
    or on a topic of its own on the Kafka broker at `kafka`; `overrides` replace settings."""
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap=kafka,
        events_topic=f"api.{uuid.uuid4().hex}" if kafka else CANONICAL_TOPIC,
        data_dir=data_dir,
        bootstrap_key=ADMIN_KEY,
        geoip_db=geoip_db,
        consistency_wait=10.0,
        max_body_bytes=4 * 1024 * 1024,
    )
    settings = dataclasses.replace(settings, **overrides)
    port = free_port()
    app = create_app(settings, ingest=True, query=True, projector=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            yield Api(base, client, settings, app)
    finally:
        server.should_exit = True
        await task
