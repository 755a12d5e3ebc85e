"""`profiles keys`: create, list and revoke API keys (R28)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import asyncpg
import structlog
import typer

from services import api_keys
from services.logging import configure
from services.runtime import open_runtime
from services.settings import Settings

T = TypeVar("T")

keys_app = typer.Typer(help="API keys: create, list and revoke.", no_args_is_help=True)

# Declared as in services/cli.py, which imports this module (so this one cannot import it).
DatabaseUrl = Annotated[
    str | None, typer.Option(envvar="DATABASE_URL", help="PostgreSQL URL; unset: embedded.")
]
DataDir = Annotated[
    Path | None, typer.Option(envvar="PROFILES_DATA_DIR", help="Embedded data directory.")
]
Permission = Annotated[
    list[str],
    typer.Option(
        "--permission", "-p", help=f"Repeatable; one of: {', '.join(api_keys.PERMISSIONS)}."
    ),
]


@keys_app.command()
def create(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. the calling service.")],
    permission: Permission,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Create a key and print it: this is the only time it is shown."""
    try:
        api_keys.parse_permissions(permission)  # before starting a database for nothing
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--permission") from None
    if not name.strip():
        raise typer.BadParameter("must not be empty", param_hint="--name")
    key, plaintext = _run(
        _settings(database_url, data_dir), lambda conn: api_keys.create_key(conn, name, permission)
    )
    typer.echo(f"key id:      {key.key_id}")
    typer.echo(f"name:        {key.name}")
    typer.echo(f"permissions: {_permissions(key)}")
    typer.echo(f"key:         {plaintext}")
    typer.echo("Store the key now: it cannot be shown again.", err=True)


@keys_app.command("list")
def list_(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """List every key, revoked ones included (never the secrets, which are not stored)."""
    keys = _run(_settings(database_url, data_dir), api_keys.list_keys)
    rows = [("KEY ID", "NAME", "PERMISSIONS", "CREATED", "REVOKED")]
    rows += [
        (k.key_id, k.name, _permissions(k), _when(k.created_at), _when(k.revoked_at)) for k in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@keys_app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id `list` shows.")],
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke a key; running servers stop accepting it within seconds."""
    if not _run(_settings(database_url, data_dir), lambda conn: api_keys.revoke(conn, key_id)):
        typer.echo(f"No key with id {key_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked {key_id}.")


def _settings(database_url: str | None, data_dir: Path | None) -> Settings:
    # Keys live in PostgreSQL only: no Kafka connection for a key command.
    settings = replace(Settings.from_env(), database_url=database_url, kafka_bootstrap=None)
    if data_dir is not None:
        settings = replace(settings, data_dir=data_dir)
    configure(settings.log_format)
    # stdout carries the command's answer (a key, a table); diagnostics must not mix into it
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    return settings


def _run(settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def run() -> T:
        rt = await open_runtime(settings)
        try:
            async with rt.pool.acquire() as conn:
                await api_keys.install(conn)
                return await action(conn)
        finally:
            await rt.close()

    return asyncio.run(run())


def _permissions(key: api_keys.ApiKey) -> str:
    return ",".join(p for p in api_keys.PERMISSIONS if p in key.permissions)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
