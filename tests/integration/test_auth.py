"""API keys against a real PostgreSQL: storage, verification, HTTP guards, bootstrap, CLI (R28)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
import structlog
from fastapi import Depends, FastAPI
from structlog.testing import capture_logs
from typer.testing import CliRunner

from services import api_keys, auth
from services.api_keys import ApiKey, Authenticator
from services.keys_cli import keys_app
from services.settings import Settings
from tests.pg import fresh_database, migrated_pool

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as pool:
        async with pool.acquire() as conn:
            await api_keys.install(conn)
            await api_keys.install(conn)  # idempotent
        yield pool


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def given_key() -> str:
    return f"sp_{secrets.token_urlsafe(9)}_{secrets.token_urlsafe(32)}"


async def create(pool: asyncpg.Pool, *permissions: str, name: str = "t") -> tuple[ApiKey, str]:
    async with pool.acquire() as conn:
        return await api_keys.create_key(conn, name, permissions)


async def revoke(pool: asyncpg.Pool, key_id: str) -> bool:
    async with pool.acquire() as conn:
        return await api_keys.revoke(conn, key_id)


async def test_create_verify_revoke_round_trip_R28(pool: asyncpg.Pool) -> None:
    key, plaintext = await create(pool, "read", "write", name="crm-sync")
    authenticator = Authenticator(pool, ttl=0)

    verified = await authenticator.verify(f"Bearer {plaintext}")

    assert verified == key
    assert key.name == "crm-sync"
    assert key.permissions == {"read", "write"}
    assert key.revoked_at is None
    assert plaintext.startswith(f"sp_{key.key_id}_")
    async with pool.acquire() as conn:
        assert [k.key_id for k in await api_keys.list_keys(conn)] == [key.key_id]
    assert await revoke(pool, key.key_id) is True
    assert await revoke(pool, key.key_id) is True  # idempotent: the key exists
    assert await revoke(pool, "no-such-key0") is False
    assert await authenticator.verify(f"Bearer {plaintext}") is None
    async with pool.acquire() as conn:
        (listed,) = await api_keys.list_keys(conn)
    assert listed.revoked_at is not None


async def test_stored_hash_is_not_the_secret_R28(pool: asyncpg.Pool) -> None:
    key, plaintext = await create(pool, "read")
    secret = plaintext.removeprefix(f"sp_{key.key_id}_")

    row = await pool.fetchrow(
        "SELECT secret_hash, t::text AS everything FROM ingest.api_keys t WHERE key_id = $1",
        key.key_id,
    )

    assert row["secret_hash"] != secret.encode()
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).digest()
    assert secret not in row["everything"]
    assert secret.encode().hex() not in row["everything"]


async def test_wrong_secret_or_malformed_key_is_rejected_R28(pool: asyncpg.Pool) -> None:
    key, plaintext = await create(pool, "read")
    authenticator = Authenticator(pool, ttl=0)
    forged = f"sp_{key.key_id}_{secrets.token_urlsafe(32)}"

    assert await authenticator.verify(f"Bearer {forged}") is None
    for header in [
        None,
        "",
        "Bearer",
        "Bearer ",
        plaintext,  # no scheme
        f"Basic {plaintext}",
        f"Bearer {plaintext[:-1]}!",
        f"Bearer sp_{key.key_id}",
        f"Bearer xx_{key.key_id}_{plaintext[16:]}",
    ]:
        assert await authenticator.verify(header) is None, header
    assert await authenticator.verify(f"bearer   {plaintext} ") == key  # scheme is case-insensitive


async def test_revoked_key_is_rejected_once_the_cache_ttl_passed_R28(pool: asyncpg.Pool) -> None:
    key, plaintext = await create(pool, "read")
    clock = Clock()
    authenticator = Authenticator(pool, ttl=5.0, clock=clock)
    assert await authenticator.verify(f"Bearer {plaintext}") == key

    await revoke(pool, key.key_id)

    clock.now += 4.9  # still cached: no database round trip, so not yet seen
    assert await authenticator.verify(f"Bearer {plaintext}") == key
    clock.now += 0.2
    assert await authenticator.verify(f"Bearer {plaintext}") is None


async def test_unknown_key_is_cached_as_a_miss_for_the_ttl_R28(pool: asyncpg.Pool) -> None:
    plaintext = given_key()
    clock = Clock()
    authenticator = Authenticator(pool, ttl=5.0, clock=clock)
    assert await authenticator.verify(f"Bearer {plaintext}") is None
    async with pool.acquire() as conn:
        await api_keys.ensure_key(conn, plaintext, "late", ["read"])

    assert await authenticator.verify(f"Bearer {plaintext}") is None
    clock.now += 5.0
    assert await authenticator.verify(f"Bearer {plaintext}") is not None


async def test_cache_is_bounded_evicting_the_oldest_entry_R28(pool: asyncpg.Pool) -> None:
    first, first_plaintext = await create(pool, "read")
    _, second_plaintext = await create(pool, "read")
    authenticator = Authenticator(pool, ttl=60.0, max_entries=1, clock=Clock())
    assert await authenticator.verify(f"Bearer {first_plaintext}") == first
    assert await authenticator.verify(f"Bearer {second_plaintext}") is not None  # evicts first

    await revoke(pool, first.key_id)

    assert await authenticator.verify(f"Bearer {first_plaintext}") is None  # looked up again


@pytest.mark.parametrize("held", api_keys.PERMISSIONS)
@pytest.mark.parametrize("needed", api_keys.PERMISSIONS)
def test_permission_matrix_admin_grants_all_R28(held: str, needed: str) -> None:
    key = ApiKey("k" * 12, "t", frozenset({held}), datetime.now(UTC), None)

    assert key.allows(needed) is (held in (needed, "admin"))


async def test_unknown_or_no_permissions_are_refused_R28(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(ValueError, match=r"unknown permission\(s\) \['owner', 'root'\]"):
            await api_keys.create_key(conn, "t", ["read", "root", "owner"])
        with pytest.raises(ValueError, match="at least one permission"):
            await api_keys.create_key(conn, "t", [])
        with pytest.raises(ValueError, match="non-empty name"):
            await api_keys.create_key(conn, " ", ["read"])
        assert await api_keys.list_keys(conn) == []
    with pytest.raises(ValueError, match="unknown permission"):
        auth.require("superuser")


def guarded_app(pool: asyncpg.Pool) -> FastAPI:
    app = FastAPI()
    app.state.auth = Authenticator(pool, ttl=0)
    app.add_exception_handler(auth.AuthError, auth.auth_error_handler)

    @app.get("/read")
    async def read(key: ApiKey = Depends(auth.require("read"))) -> dict[str, str]:  # noqa: B008
        return {"key_id": key.key_id}

    @app.delete("/thing", dependencies=[Depends(auth.require("delete"))])
    async def delete() -> dict[str, bool]:
        return {"deleted": True}

    return app


async def test_http_guards_answer_401_403_and_200_R28(pool: asyncpg.Pool) -> None:
    reader, read_plaintext = await create(pool, "read")
    _, admin_plaintext = await create(pool, "admin")
    revoked, revoked_plaintext = await create(pool, "read", "delete")
    await revoke(pool, revoked.key_id)
    app = guarded_app(pool)

    with capture_logs() as logs:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t"
        ) as client:

            async def get(path: str, header: str | None, method: str = "GET") -> httpx.Response:
                headers = {} if header is None else {"Authorization": header}
                return await client.request(method, path, headers=headers)

            for header in [
                None,
                "Token abc",
                "Bearer not-a-key",
                f"Bearer {given_key()}",
                f"Bearer {revoked_plaintext}",
            ]:
                response = await get("/read", header)
                assert response.status_code == 401, header
                assert response.headers["WWW-Authenticate"] == "Bearer"
                assert response.headers["Content-Type"] == "application/problem+json"
                body = response.json()
                assert body["type"] == "about:blank"
                assert body["title"] == "Unauthorized"
                assert body["status"] == 401
                assert body["errors"] == []
                assert "Bearer" in body["detail"] or "revoked" in body["detail"]

            forbidden = await get("/thing", f"Bearer {read_plaintext}", "DELETE")
            assert forbidden.status_code == 403
            assert "WWW-Authenticate" not in forbidden.headers
            assert forbidden.headers["Content-Type"] == "application/problem+json"
            assert forbidden.json() == {
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
                "detail": "The API key lacks the 'delete' permission.",
                "errors": [],
            }

            ok = await get("/read", f"Bearer {read_plaintext}")
            assert ok.status_code == 200
            assert ok.json() == {"key_id": reader.key_id}
            assert (await get("/thing", f"Bearer {admin_plaintext}", "DELETE")).status_code == 200
    assert "HTTPBearer" in app.openapi()["components"]["securitySchemes"]
    for plaintext in (read_plaintext, admin_plaintext, revoked_plaintext):
        assert plaintext[16:] not in repr(logs)


async def test_bootstrap_writes_admin_key_once_with_mode_0600_R28(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data_dir = tmp_path / "not" / "yet"
    with capture_logs() as logs:
        async with pool.acquire() as conn:
            written = await api_keys.bootstrap(conn, data_dir, None)
            again = await api_keys.bootstrap(conn, data_dir, None)

    assert written == data_dir / "admin.key"
    assert again is None
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    plaintext = written.read_text().strip()
    key = await Authenticator(pool, ttl=0).verify(f"Bearer {plaintext}")
    assert key is not None
    assert key.name == "bootstrap-admin"
    assert key.permissions == {"admin"}
    assert plaintext[16:] not in repr(logs)
    assert files(data_dir) == ["admin.key"]

    await revoke(pool, key.key_id)  # no live admin any more: a new one is written
    async with pool.acquire() as conn:
        assert await api_keys.bootstrap(conn, data_dir, None) == written
    assert written.read_text().strip() != plaintext
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


async def test_concurrent_bootstraps_create_one_admin_key_R28(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async def start() -> Path | None:
        async with pool.acquire() as conn:
            return await api_keys.bootstrap(conn, tmp_path, None)

    results = await asyncio.gather(*(start() for _ in range(4)))

    assert results.count(None) == 3
    assert tmp_path / "admin.key" in results
    async with pool.acquire() as conn:
        assert len(await api_keys.list_keys(conn)) == 1


async def test_bootstrap_key_from_environment_is_ensured_as_admin_R28(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    plaintext = given_key()
    settings = Settings.from_env({"PROFILES_BOOTSTRAP_KEY": plaintext})
    authenticator = Authenticator(pool, ttl=0)

    with capture_logs() as logs:
        async with pool.acquire() as conn:
            assert await api_keys.bootstrap(conn, tmp_path, settings.bootstrap_key) is None
            assert await api_keys.bootstrap(conn, tmp_path, settings.bootstrap_key) is None
            keys = await api_keys.list_keys(conn)

    assert files(tmp_path) == []
    assert len(keys) == 1
    key = await authenticator.verify(f"Bearer {plaintext}")
    assert key is not None
    assert key.allows("delete")
    assert plaintext[16:] not in repr(logs)

    await revoke(pool, key.key_id)
    async with pool.acquire() as conn:
        await api_keys.bootstrap(conn, tmp_path, plaintext)  # a revocation is not undone
    assert await authenticator.verify(f"Bearer {plaintext}") is None


async def test_bootstrap_key_must_be_well_formed_and_is_never_echoed_R28(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    taken = given_key()
    async with pool.acquire() as conn:
        await api_keys.ensure_key(conn, taken, "first", ["read"])
        for bad in ["letmein-please-letmein-please-letmein", f"sp_{'a' * 12}_short"]:
            with pytest.raises(ValueError, match="must read sp_") as caught:
                await api_keys.bootstrap(conn, tmp_path, bad)
            assert bad not in str(caught.value)
        other_secret = f"{taken[:16]}{secrets.token_urlsafe(32)}"
        with pytest.raises(ValueError, match="already exists with another secret") as caught:
            await api_keys.ensure_key(conn, other_secret, "second", ["admin"])
        assert other_secret[16:] not in str(caught.value)


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.mark.usefixtures("restore_structlog")
async def test_cli_creates_lists_and_revokes_keys_R28(database_url: str) -> None:
    runner = CliRunner()

    async def cli(url: str, *args: str) -> tuple[int, str]:
        env = {"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": None}
        # in a thread: the command runs its own event loop
        result = await asyncio.to_thread(runner.invoke, keys_app, list(args), env=env)
        return result.exit_code, result.stdout

    async with fresh_database(database_url) as url:
        code, out = await cli(url, "create", "--name", "ci", "--permission", "write", "-p", "read")
        assert code == 0, out
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        key_id, plaintext = fields["key id"].strip(), fields["key"].strip()
        assert fields["permissions"].strip() == "read,write"

        code, listed = await cli(url, "list")
        assert code == 0, listed
        (row,) = [line for line in listed.splitlines() if line.startswith(key_id)]
        assert row.split()[1:3] == ["ci", "read,write"]
        assert row.endswith("-")  # not revoked
        assert plaintext[16:] not in listed

        assert await cli(url, "revoke", key_id) == (0, f"Revoked {key_id}.\n")
        code, listed = await cli(url, "list")
        (row,) = [line for line in listed.splitlines() if line.startswith(key_id)]
        assert row.endswith("UTC")  # revoked at
        assert (await cli(url, "revoke", "nonexistent0"))[0] == 1
        assert (await cli(url, "create", "--name", "x", "-p", "root"))[0] == 2

        conn = await asyncpg.connect(url)
        try:
            (key,) = await api_keys.list_keys(conn)
        finally:
            await conn.close()
        assert key.key_id == key_id
        assert key.revoked_at is not None
