"""Real processes of ours, started the way an operator would, for crash and scale-out tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

REPO = Path(__file__).resolve().parents[2]


def start_profiles(
    args: list[str], env: dict[str, str], log_path: Path, unset: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """Start `profiles ARGS` as its own process with its output in `log_path`."""
    full_env = {**os.environ, "PROFILES_LOG_FORMAT": "json", **env}
    for name in unset:
        full_env.pop(name, None)
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services", *args],
            env=full_env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no shutdown code runs, as in a crash."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def terminate(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM and wait: the graceful path."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)
    return proc.returncode


async def wait_for(pool: asyncpg.Pool, sql: str, predicate, within: float = 60.0, *args: object):  # type: ignore[no-untyped-def]
    """Poll `sql` until `predicate(value)` holds; return the last value."""
    deadline = time.monotonic() + within
    value = None
    while time.monotonic() < deadline:
        value = await pool.fetchval(sql, *args)
        if predicate(value):
            return value
        await asyncio.sleep(0.05)
    return value


async def logged(path: Path, event: str, within: float = 60.0) -> bool:
    """Wait until a process's JSON log at `path` has a line of `event`; whether it came."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await asyncio.to_thread(_has, path, f'"{event}"'):
            return True
        await asyncio.sleep(0.05)
    return False


def _has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


async def group_members(bootstrap: str, group: str) -> list[str]:
    """The member ids of a Kafka consumer group (a static member's starts with its name)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return [member[0] for member in described.groups[0][5]]
