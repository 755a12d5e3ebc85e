"""PostgreSQL 18 and Apache Kafka 4.1 in containers via testcontainers, when Docker answers."""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

__all__ = [
    "KAFKA_IMAGE",
    "POSTGRES_IMAGE",
    "StartedContainer",
    "container_running",
    "docker_available",
    "remove_container",
    "start_kafka_container",
    "start_postgres_container",
]

log = structlog.get_logger()

POSTGRES_IMAGE = "postgres:18"
KAFKA_IMAGE = "apache/kafka:4.1.1"
_KAFKA_PORT = 9092
_KAFKA_START_SCRIPT = "/tmp/testcontainers_start.sh"  # noqa: S108 - a path inside the container


@dataclass(frozen=True)
class StartedContainer:
    """A running container: the address clients use and the handle that removes it."""

    url: str
    handle: DockerContainer

    def stop(self) -> None:
        """Remove the container and its anonymous volumes."""
        self.handle.stop()


@functools.cache
def docker_available() -> bool:
    """Return True if a Docker engine answers `docker info` within a few seconds."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def start_postgres_container(
    *, name: str | None = None, keep: bool = False, fast: bool = True
) -> StartedContainer:
    """Start postgres:18 and return its URL without a driver suffix, ready for asyncpg."""
    from testcontainers.community.postgres import PostgresContainer

    _keep(keep)
    durability = "off" if fast else "on"
    settings = {
        "max_connections": "200",
        "shared_buffers": "256MB",
        "fsync": durability,
        "synchronous_commit": durability,
        "full_page_writes": durability,
    }
    # Docker's default 64 MB /dev/shm is too small for parallel query workers.
    container = PostgresContainer(
        POSTGRES_IMAGE,
        username="postgres",
        password="postgres",  # noqa: S106 - a throwaway local test server
        dbname="postgres",
        driver=None,
        shm_size="512m",
    )
    container.with_command(["postgres", *(f"-c{key}={value}" for key, value in settings.items())])
    if name is not None:
        container.with_name(name)
    container.start()
    url = container.get_connection_url()
    log.info("postgres.container_started", url=url, image=POSTGRES_IMAGE)
    return StartedContainer(url=url, handle=container)


def start_kafka_container(
    *, name: str | None = None, keep: bool = False, partitions: int = 4
) -> StartedContainer:
    """Start apache/kafka:4.1.1 as one KRaft node and return its bootstrap address."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    _keep(keep)
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        # PLAINTEXT is published to the host; BROKER and CONTROLLER stay inside the container.
        "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9094",
        "KAFKA_NUM_PARTITIONS": str(partitions),
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }
    container = DockerContainer(KAFKA_IMAGE).with_exposed_ports(_KAFKA_PORT).with_envs(**env)
    # The advertised host port is known only once the container runs, so the image's own
    # entrypoint waits for a script we copy in afterwards (as Testcontainers for Java does).
    wait_then_run = (
        f"while [ ! -f {_KAFKA_START_SCRIPT} ]; do sleep 0.1; done; exec sh {_KAFKA_START_SCRIPT}"
    )
    container.with_command(["sh", "-c", wait_then_run])
    if name is not None:
        container.with_name(name)
    container.start()
    address = f"{container.get_container_host_ip()}:{container.get_exposed_port(_KAFKA_PORT)}"
    script = (
        f"export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{address},BROKER://$(hostname):9093\n"
        "exec /etc/kafka/docker/run\n"
    )
    try:
        container.copy_into_container(script.encode(), _KAFKA_START_SCRIPT, 0o755)
        LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(90).wait_until_ready(
            container
        )
    except Exception:
        container.stop()
        raise
    log.info("kafka.container_started", address=address, image=KAFKA_IMAGE)
    return StartedContainer(url=address, handle=container)


def container_running(name: str) -> bool:
    """Return True if a container with this name exists and is running."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    result = subprocess.run(
        [docker, "inspect", "--format", "{{.State.Running}}", name],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "true"


def remove_container(name: str) -> None:
    """Force-remove the named container with its anonymous volumes; absent is fine."""
    docker = shutil.which("docker")
    if docker is None:
        return
    subprocess.run(
        [docker, "rm", "--force", "--volumes", name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def _keep(keep: bool) -> None:
    """Let containers outlive this process by turning off the Ryuk reaper for it."""
    if keep:
        from testcontainers.core.config import testcontainers_config

        testcontainers_config.ryuk_disabled = True
