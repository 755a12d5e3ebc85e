"""The walking skeleton over real HTTP: import a profile, read it back with its token."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from services import consistency
from services.eventlog.port import Position
from services.local._net import free_port
from services.local.postgres import postgres_running
from tests.api import ADMIN_KEY
from tests.integration.procs import logged, start_profiles, terminate
from tests.pg import fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# uvicorn shuts down gracefully on SIGTERM, then re-raises the signal it caught
GRACEFUL = {0, -signal.SIGTERM}


async def ready(base: str, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base}/openapi.json")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{base} did not answer within {within}s")


async def import_and_read(ingest: str, query: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        database = await client.post(
            f"{ingest}/v1/databases", json={"database_id": "shop", "name": "Shop"}
        )
        assert database.status_code == 201, database.text
        created = await client.post(
            f"{ingest}/v1/databases/shop/profiles",
            json={
                "email": " Ann@Example.com ",
                "phones": ["+4712345678"],
                "fields": {"first_name": "Ann"},
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["created"] is True
        read = await client.get(
            f"{query}/v1/profiles/{body['profile_id']}",
            headers={"Consistency-Token": body["consistency_token"]},
        )
        assert read.status_code == 200, read.text
        assert "Consistency" not in read.headers
        profile = read.json()
        assert profile["email"] == "ann@example.com"
        assert profile["fields"] == {"first_name": "Ann"}
        assert profile["import_mode"] == "api"

        again = await client.post(  # same email, other case: the same profile (R6)
            f"{ingest}/v1/databases/shop/profiles",
            json={
                "email": "ANN@example.com",
                "phones": ["+4787654321", "+4712345678"],
                "fields": {"last_name": "Lee"},
            },
        )
        assert again.status_code == 200
        assert again.json()["profile_id"] == body["profile_id"]
        assert again.json()["created"] is False
        merged = await client.get(
            f"{query}/v1/profiles/{body['profile_id']}",
            headers={"Consistency-Token": again.json()["consistency_token"]},
        )
        assert merged.json()["fields"] == {"first_name": "Ann", "last_name": "Lee"}
        assert merged.json()["version"] == 2
        assert merged.json()["phones"] == ["+4712345678", "+4787654321"]

        anonymous = await client.post(f"{ingest}/v1/databases/shop/profiles", json={})
        pid = anonymous.json()["profile_id"]
        read = await client.get(
            f"{query}/v1/profiles/{pid}",
            headers={"Consistency-Token": anonymous.json()["consistency_token"]},
        )
        assert read.json()["email"] == f"{pid}@localhost"  # R6

        bad = await client.post(
            f"{ingest}/v1/databases/shop/profiles", json={"email": "not-an-email", "x": 1}
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert {e["field"] for e in bad.json()["errors"]} == {"x", "email"}  # every error
        bad = await client.post(f"{ingest}/v1/databases/shop/profiles", json={"email": "nope"})
        assert bad.status_code == 422
        assert bad.json()["errors"] == [{"field": "email", "rule": "email_syntax", "value": "nope"}]

        ahead = await client.get(  # a token the projection cannot reach: bounded wait
            f"{query}/v1/profiles/{body['profile_id']}",
            headers={"Consistency-Token": consistency.token([Position(0, 10**12)])},
        )
        assert ahead.status_code == 200
        assert ahead.headers["Consistency"] == "behind"
        garbage = await client.get(
            f"{query}/v1/profiles/{body['profile_id']}", headers={"Consistency-Token": "%%%"}
        )
        assert garbage.status_code == 400

        missing = await client.get(f"{query}/v1/profiles/{uuid.uuid4()}")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        anonymous = await client.get(f"{query}/v1/profiles/{pid}", headers={"Authorization": ""})
        assert anonymous.status_code == 401  # R28


async def test_serve_on_the_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_profiles(
        ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        {"PROFILES_CONSISTENCY_WAIT": "0.5"},
        tmp_path / "serve.log",
        unset=("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    try:
        await ready(base)
        assert postgres_running(tmp_path / "data" / "postgres") is not None
        key_file = tmp_path / "data" / "admin.key"  # first start writes an admin key (API.md)
        assert key_file.stat().st_mode & 0o777 == 0o600
        await import_and_read(base, base, key_file.read_text().strip())
    finally:
        code = terminate(proc)
    output = (tmp_path / "serve.log").read_text()
    assert code in GRACEFUL, output[-3000:]
    assert '"projector.stopped"' in output
    assert "admin.key" in output  # says where to read the key
    assert key_file.read_text().strip() not in output  # never the key itself
    assert postgres_running(tmp_path / "data" / "postgres") is None  # stopped with the service


@pytest.mark.parametrize(
    ("setting", "why"),
    [
        ({"PROFILES_READ_SCHEMA": 'no"such'}, "Error"),  # refused by the runtime's migration
    ],
)
def test_serve_that_fails_to_start_stops_its_embedded_postgres(
    tmp_path: Path, setting: dict[str, str], why: str
) -> None:
    proc = start_profiles(
        ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")],
        setting,
        tmp_path / "serve.log",
        unset=("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    try:
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            terminate(proc)
    output = (tmp_path / "serve.log").read_text()
    assert code != 0, output[-3000:]
    assert "postgres.started" in output  # the failure came after the embedded server was up
    assert why in output  # and says why
    assert postgres_running(tmp_path / "data" / "postgres") is None  # and nothing is left running


@pytest.mark.kafka
async def test_distributed_roles_over_kafka(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with fresh_database(database_url) as url:
        env = {
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PROFILES_EVENTS_TOPIC": f"skeleton.{uuid.uuid4().hex}",
            "PROFILES_CONSISTENCY_WAIT": "0.5",
            "PROFILES_BOOTSTRAP_KEY": ADMIN_KEY,
        }
        ports = free_port(), free_port()
        procs = [
            start_profiles(["ingest-api", "--port", str(ports[0])], env, tmp_path / "ingest.log"),
            start_profiles(["projector"], env, tmp_path / "projector.log"),
            start_profiles(["query-api", "--port", str(ports[1])], env, tmp_path / "query.log"),
        ]
        try:
            ingest, query = (f"http://127.0.0.1:{p}" for p in ports)
            await ready(ingest)
            await ready(query)
            # the 0.5 s bound is the token's wait for a running projector, not its start-up
            assert await logged(tmp_path / "projector.log", "projector.assigned")
            await import_and_read(ingest, query, ADMIN_KEY)
        finally:
            codes = [terminate(p) for p in procs]
        assert set(codes) <= GRACEFUL
