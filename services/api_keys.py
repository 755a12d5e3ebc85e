"""API keys (R28): hashed in PostgreSQL, checked per request through a short in-memory cache.

A key reads `sp_<key_id>_<secret>` and carries permissions from `PERMISSIONS`; `admin` grants every
permission. Only the SHA-256 of the secret is stored, so the plaintext is shown once, at creation.
The HTTP side (the FastAPI dependency, the problem responses) is `services.auth`: a role that
serves no HTTP, as the projector, starts without importing the web stack.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import string
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import structlog

PERMISSIONS = ("read", "write", "delete", "admin")
ADMIN = "admin"
PREFIX = "sp_"
ID_CHARS = 12  # secrets.token_urlsafe(9)
MIN_SECRET_CHARS = 32  # ≥ 192 bits when url-safe random; token_urlsafe(32) gives 43
_URLSAFE = frozenset(string.ascii_letters + string.digits + "-_")
# the form of a key, as a given one (PROFILES_BOOTSTRAP_KEY) must have it
KEY_FORM = (
    f"{PREFIX}<{ID_CHARS} url-safe chars>_<at least {MIN_SECRET_CHARS} url-safe chars> "
    "(url-safe: letters, digits, - and _)"
)

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE IF NOT EXISTS ingest.api_keys (
    key_id      text PRIMARY KEY,
    name        text NOT NULL,
    secret_hash bytea NOT NULL,
    permissions text[] NOT NULL
        CHECK (cardinality(permissions) > 0
               AND permissions <@ ARRAY['read', 'write', 'delete', 'admin']),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
"""
_COLUMNS = "key_id, name, secret_hash, permissions, created_at, revoked_at"


@dataclass(frozen=True)
class ApiKey:
    """A key as stored, without its secret."""

    key_id: str
    name: str
    permissions: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, permission: str) -> bool:
        """Whether the key grants `permission` (`admin` grants all)."""
        return permission in self.permissions or ADMIN in self.permissions


async def install(conn: asyncpg.Connection) -> None:
    """Create the key table if it is missing."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.api_keys'))")
        await conn.execute(_SCHEMA)


def parse_permissions(permissions: Iterable[str]) -> frozenset[str]:
    """The permissions as a set; ValueError naming any unknown one, or if there are none."""
    wanted = frozenset([permissions] if isinstance(permissions, str) else permissions)
    unknown = sorted(wanted - set(PERMISSIONS))
    if unknown:
        raise ValueError(f"unknown permission(s) {unknown}; known: {', '.join(PERMISSIONS)}")
    if not wanted:
        raise ValueError(f"a key needs at least one permission of: {', '.join(PERMISSIONS)}")
    return wanted


def new_key_id() -> str:
    """12 url-safe random characters, never starting with `-`: `profiles keys revoke -Abc…`
    would read it as an option (one id in 64 did)."""
    while (key_id := secrets.token_urlsafe(9)).startswith("-"):
        pass
    return key_id


async def create_key(
    conn: asyncpg.Connection, name: str, permissions: Iterable[str]
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is not stored and so cannot be shown again."""
    granted = parse_permissions(permissions)
    key_id, secret = new_key_id(), secrets.token_urlsafe(32)
    key = await _insert(conn, key_id, name, _digest(secret), granted)
    assert key is not None  # 72 random bits: a key_id collision is not a case to handle
    structlog.get_logger(__name__).info(
        "auth.key_created", key_id=key.key_id, key_name=name, permissions=sorted(granted)
    )
    return key, f"{PREFIX}{key_id}_{secret}"


async def list_keys(conn: asyncpg.Connection) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM ingest.api_keys ORDER BY created_at, key_id")
    return [_key(row) for row in rows]


async def revoke(conn: asyncpg.Connection, key_id: str) -> bool:
    """Revoke the key (keeping the first revocation time); False if there is no such key."""
    found = await conn.fetchval(
        "UPDATE ingest.api_keys SET revoked_at = coalesce(revoked_at, now()) "
        "WHERE key_id = $1 RETURNING true",
        key_id,
    )
    if found:
        structlog.get_logger(__name__).info("auth.key_revoked", key_id=key_id)
    return bool(found)


async def ensure_key(
    conn: asyncpg.Connection, plaintext: str, name: str, permissions: Iterable[str]
) -> ApiKey:
    """Make the given key exist (for PROFILES_BOOTSTRAP_KEY); an existing one is left unchanged.

    A revoked key stays revoked: reviving it because a process restarted with an old environment
    would undo a deliberate revocation. The returned key's `revoked_at` tells the caller.
    """
    key_id, secret = given_key_parts(plaintext)
    granted = parse_permissions(permissions)
    key = await _insert(conn, key_id, name, _digest(secret), granted)
    if key is not None:
        structlog.get_logger(__name__).info(
            "auth.key_ensured", key_id=key_id, key_name=name, permissions=sorted(granted)
        )
        return key
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM ingest.api_keys WHERE key_id = $1", key_id)
    if not hmac.compare_digest(bytes(row["secret_hash"]), _digest(secret)):
        raise ValueError(f"API key id {key_id} already exists with another secret")
    existing = _key(row)
    if existing.revoked_at is not None:
        structlog.get_logger(__name__).warning("auth.given_key_revoked", key_id=key_id)
    return existing


def given_key_parts(plaintext: str) -> tuple[str, str]:
    """(key_id, secret) of a key given from outside; ValueError saying the form it must have,
    never the value (it is a secret)."""
    parts = _split(plaintext)
    if parts is None or len(parts[1]) < MIN_SECRET_CHARS:
        raise ValueError(
            f"a given API key must read {KEY_FORM}, as `profiles keys create` prints one"
        )
    return parts


async def bootstrap(
    conn: asyncpg.Connection, data_dir: Path, bootstrap_key: str | None
) -> Path | None:
    """Make sure an admin can get in; the path of a newly written admin key file, else None.

    With `bootstrap_key` that key is ensured as admin. Otherwise, when no live admin key exists, one
    is created and its plaintext written to `data_dir/admin.key` (mode 0600): log the path, never
    the key.
    """
    if bootstrap_key is not None:
        await ensure_key(conn, bootstrap_key, "bootstrap", [ADMIN])
        return None
    async with conn.transaction():
        # two processes starting at once must not both create an admin key
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.api_keys'))")
        if await conn.fetchval(
            "SELECT EXISTS (SELECT FROM ingest.api_keys "
            "WHERE revoked_at IS NULL AND $1 = ANY(permissions))",
            ADMIN,
        ):
            return None
        _, plaintext = await create_key(conn, "bootstrap-admin", [ADMIN])
        path = data_dir / "admin.key"
        # inside the transaction: if the file cannot be written, no unknowable admin key remains
        await asyncio.to_thread(_write_private, path, plaintext + "\n")
        return path


class Authenticator:
    """Checks bearer keys against the table, caching lookups for `ttl` seconds.

    A revocation (or a new key) takes effect in a running process within `ttl` seconds. The cache
    holds key ids, stored hashes and misses, never secrets; it keeps at most `max_entries`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self._pool = pool
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        # key_id -> (expires, (secret_hash, key) or None for "no such key"); insertion order is
        # expiry order because the TTL is fixed, so the first entry is the one to evict
        self._cache: dict[str, tuple[float, tuple[bytes, ApiKey] | None]] = {}

    async def verify(self, header_value: str | None) -> ApiKey | None:
        """The live key an `Authorization: Bearer <key>` value carries, else None."""
        parts = _split(_bearer_token(header_value))
        if parts is None:
            return None
        key_id, secret = parts
        stored = await self._lookup(key_id)
        if stored is None or not hmac.compare_digest(stored[0], _digest(secret)):
            return None
        key = stored[1]
        return key if key.revoked_at is None else None

    def forget(self, key_id: str | None = None) -> None:
        """Drop one key (or all) from the cache, e.g. right after revoking it in this process."""
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    async def _lookup(self, key_id: str) -> tuple[bytes, ApiKey] | None:
        now = self._clock()
        cached = self._cache.get(key_id)
        if cached is not None and now < cached[0]:
            return cached[1]
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM ingest.api_keys WHERE key_id = $1", key_id
        )
        stored = None if row is None else (bytes(row["secret_hash"]), _key(row))
        self._cache.pop(key_id, None)
        while len(self._cache) >= self._max:
            del self._cache[next(iter(self._cache))]
        self._cache[key_id] = (now + self._ttl, stored)
        return stored


def _digest(secret: str) -> bytes:
    # A plain, unsalted SHA-256 is enough: secrets are ≥ 192 random bits, so there is nothing to
    # guess by brute force or rainbow table, and a slow KDF would cost every request instead.
    return hashlib.sha256(secret.encode()).digest()


def _bearer_token(header_value: str | None) -> str | None:
    scheme, _, token = (header_value or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _split(plaintext: str | None) -> tuple[str, str] | None:
    """(key_id, secret) of `sp_<key_id>_<secret>`; the id is fixed-width as it may contain `_`."""
    if plaintext is None or not plaintext.startswith(PREFIX):
        return None
    rest = plaintext[len(PREFIX) :]
    key_id, sep, secret = rest[:ID_CHARS], rest[ID_CHARS : ID_CHARS + 1], rest[ID_CHARS + 1 :]
    if len(key_id) != ID_CHARS or sep != "_" or not secret:
        return None
    if not _URLSAFE.issuperset(key_id) or not _URLSAFE.issuperset(secret):
        return None
    return key_id, secret


async def _insert(
    conn: asyncpg.Connection, key_id: str, name: str, secret_hash: bytes, granted: frozenset[str]
) -> ApiKey | None:
    """Insert a key; None if its id is taken."""
    if not name.strip():
        raise ValueError("a key needs a non-empty name")
    row = await conn.fetchrow(
        "INSERT INTO ingest.api_keys (key_id, name, secret_hash, permissions) "
        f"VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING RETURNING {_COLUMNS}",
        key_id,
        name,
        secret_hash,
        sorted(granted),
    )
    return None if row is None else _key(row)


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        permissions=frozenset(row["permissions"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only, replacing any older file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a leftover file
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)
