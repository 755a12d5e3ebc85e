"""Bulk roles give the CPU to readers, and their PostgreSQL sessions follow (issue 3: GET p99
while imports run). Niceness cannot be raised back, so each case runs in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from services.local.postgres import postgres_running
from services.settings import Settings
from tests.integration.procs import start_profiles, terminate

REPO = Path(__file__).resolve().parents[2]
_PROBE = textwrap.dedent(
    """
    import asyncio, datetime, json, os, sys, threading
    from services.runtime import create_pool, share_priority, yield_to_readers

    class Elsewhere:  # a session whose server pid is no PostgreSQL backend of this machine
        def get_server_pid(self):
            return int(sys.argv[3])

        async def fetchval(self, *_):
            return datetime.datetime.now(datetime.timezone.utc)

    async def main():
        release = threading.Event()
        earlier = threading.Thread(target=release.wait)  # a thread made before the call
        earlier.start()
        yield_to_readers(int(sys.argv[2]))
        yield_to_readers(int(sys.argv[2]))  # twice: a level, not a step
        thread = os.getpriority(os.PRIO_PROCESS, earlier.native_id)
        release.set()
        earlier.join()
        pool = await create_pool(sys.argv[1], "public")
        try:
            async with pool.acquire() as conn:  # the session is alive while it is looked at
                pid = conn.get_server_pid()
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        local = f.read(64).startswith(b"postgres")
                    backend = os.getpriority(os.PRIO_PROCESS, pid) if local else None
                except OSError:
                    local, backend = False, None
        finally:
            await pool.close()
        await share_priority(Elsewhere())
        own = os.getpriority(os.PRIO_PROCESS, 0)
        print(json.dumps({"own": own, "thread": thread, "local": local, "backend": backend}))

    asyncio.run(main())
    """
)


def _probe(database_url: str, nice: int, bystander: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, database_url, str(nice), str(bystander)],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.postgres
def test_a_bulk_role_lowers_its_priority_and_its_database_sessions_and_nothing_else(
    database_url: str,
) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        seen = _probe(database_url, 7, bystander.pid)
        assert seen["own"] == 7  # not 14: yielding twice is idempotent
        assert seen["thread"] == 7  # a thread that existed before the call too (Linux)
        if not seen["local"]:
            pytest.skip("the PostgreSQL server is not a process of this machine (container)")
        assert seen["backend"] == 7  # the pooled session followed
        assert os.getpriority(os.PRIO_PROCESS, bystander.pid) == 0  # not a backend: left alone
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.postgres
def test_nice_zero_leaves_every_priority_as_it_is(database_url: str) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        seen = _probe(database_url, 0, bystander.pid)
        assert seen["own"] == 0
        assert seen["thread"] == 0
        assert seen["backend"] in (0, None)  # None: a server in a container, not ours to see
    finally:
        bystander.kill()
        bystander.wait()


def test_background_nice_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).background_nice == 19
    assert Settings.from_env({"PROFILES_BACKGROUND_NICE": "0"}).background_nice == 0
    assert Settings.from_env({"PROFILES_BACKGROUND_NICE": "10"}).background_nice == 10


def test_an_embedded_server_a_bulk_role_starts_keeps_the_readers_priority(tmp_path: Path) -> None:
    """`profiles projector` on the embedded default starts the server, which the API roles then
    share: the projector runs lowered, the server it started does not."""
    data = tmp_path / "data"
    proc = start_profiles(
        ["projector"],
        {"PROFILES_DATA_DIR": str(data)},
        tmp_path / "projector.log",
        unset=("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    try:
        deadline = time.monotonic() + 60
        while postgres_running(data / "postgres") is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert postgres_running(data / "postgres") is not None
        while "projector.started" not in (tmp_path / "projector.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "projector.log").read_text()
            time.sleep(0.2)
        pidfile = next(data.glob("postgres/**/postmaster.pid"))
        postmaster = int(pidfile.read_text().split()[0])
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == Settings().background_nice
        assert os.getpriority(os.PRIO_PROCESS, postmaster) == 0
    finally:
        assert terminate(proc) == 0
    assert postgres_running(data / "postgres") is None  # the role that started it stopped it
