"""Real Apache Kafka 4.1 in KRaft combined mode: jars from Maven Central, one JVM, no Docker."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import structlog

from services.local._net import (
    LOCALHOST,
    cmdline,
    free_port,
    locked,
    pid_alive,
    port_is_free,
    read_int,
    run_tool,
    tail,
    write_int,
)
from services.local.errors import ServiceUnavailable

__all__ = [
    "KAFKA_VERSION",
    "fetch_kafka_jars",
    "kafka_running",
    "start_kafka",
    "stop_kafka",
]

log = structlog.get_logger()

KAFKA_VERSION = "4.1.1"
MIN_JAVA = 17
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
FETCH_TIMEOUT_S = 900.0
JVM_HEAP = ("-Xms256m", "-Xmx768m")
_POM = "kafka-pom.xml"
_LOG4J2 = "kafka-log4j2.xml"
_KAFKA_JAR = f"kafka_2.13-{KAFKA_VERSION}.jar"


def fetch_kafka_jars(cache_dir: Path) -> Path:
    """Resolve the broker's runtime classpath into cache_dir/libs with Maven, once."""
    cache_dir = cache_dir.expanduser().resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    libs = cache_dir / "libs"
    marker = libs / ".complete"
    pom = _resource(_POM)
    # The marker records which pom produced libs, so editing the pom refetches.
    stamp = hashlib.sha256(pom.encode()).hexdigest()
    with locked(cache_dir / ".lock"):
        if marker.is_file() and marker.read_text().strip() == stamp:
            return libs
        _java()
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceUnavailable(
                "Apache Maven (mvn) is not on PATH; it is needed once to fetch the Kafka "
                f"{KAFKA_VERSION} jars from Maven Central into {libs}"
            )
        (cache_dir / "pom.xml").write_text(pom)
        if libs.exists():
            # A previous fetch died half way; start from nothing rather than trust it.
            shutil.rmtree(libs)
        began = time.monotonic()
        command = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(cache_dir / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ]
        _run(command, cwd=cache_dir, timeout=FETCH_TIMEOUT_S, what="fetching the Kafka jars")
        if not (libs / _KAFKA_JAR).is_file():
            raise ServiceUnavailable(f"mvn finished but {libs / _KAFKA_JAR} is missing")
        marker.write_text(f"{stamp}\n")
        log.info(
            "kafka.jars_fetched",
            libs=str(libs),
            jars=sum(1 for _ in libs.glob("*.jar")),
            seconds=round(time.monotonic() - began, 1),
        )
        return libs


def kafka_running(data_dir: Path) -> str | None:
    """Return "127.0.0.1:PORT" of the broker started for data_dir, or None if it is not alive."""
    data_dir = data_dir.expanduser().resolve()
    pid = read_int(data_dir / "kafka.pid")
    port = read_int(data_dir / "port")
    if pid is None or port is None or not pid_alive(pid):
        return None
    argv = cmdline(pid)
    # A stale pid file can name a recycled pid that now belongs to another program.
    if argv and str(data_dir / "server.properties") not in argv:
        return None
    return f"{LOCALHOST}:{port}"


def start_kafka(
    data_dir: Path, cache_dir: Path, port: int | None = None, partitions: int = 4
) -> str:
    """Start a single-node KRaft broker+controller for data_dir and return its bootstrap address."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with locked(data_dir / ".lock"):
        running = kafka_running(data_dir)
        if running is not None:
            return running
        libs = fetch_kafka_jars(cache_dir)
        java = _java()
        broker_port, controller_port = _ports(data_dir, port)
        properties = data_dir / "server.properties"
        properties.write_text(
            _server_properties(data_dir, broker_port, controller_port, partitions)
        )
        log4j = data_dir / "log4j2.xml"
        log4j.write_text(_resource(_LOG4J2))
        jvm = [java, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
        _format_storage(data_dir, jvm, properties)
        began = time.monotonic()
        argv = [
            java,
            *JVM_HEAP,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            *jvm[1:],
            "kafka.Kafka",
            str(properties),
        ]
        pid = _spawn(argv, data_dir / "kafka.log")
        write_int(data_dir / "kafka.pid", pid)
        _wait_ready(data_dir, pid, broker_port, began)
        address = f"{LOCALHOST}:{broker_port}"
        log.info("kafka.started", address=address, seconds=round(time.monotonic() - began, 2))
        return address


def stop_kafka(data_dir: Path) -> None:
    """Stop the broker of data_dir: SIGTERM, up to 30 s for a clean shutdown, then SIGKILL."""
    data_dir = data_dir.expanduser().resolve()
    if not data_dir.exists():
        return
    with locked(data_dir / ".lock"):
        pid = read_int(data_dir / "kafka.pid")
        if pid is not None and kafka_running(data_dir) is not None:
            _terminate(pid)
            log.info("kafka.stopped", data_dir=str(data_dir))
        (data_dir / "kafka.pid").unlink(missing_ok=True)


def _ports(data_dir: Path, port: int | None) -> tuple[int, int]:
    """Pick and persist the broker and controller ports, reusing remembered ones."""
    broker = port if port is not None else read_int(data_dir / "port")
    if broker is None or (port is None and not port_is_free(broker)):
        # The broker port is not part of the quorum metadata, so moving it is harmless.
        broker = free_port()
    controller = read_int(data_dir / "controller.port")
    if controller is None or not port_is_free(controller):
        # Kafka 4.1 updates a moved controller endpoint in the quorum itself at startup.
        controller = free_port()
        while controller == broker:
            controller = free_port()
    write_int(data_dir / "port", broker)
    write_int(data_dir / "controller.port", controller)
    return broker, controller


def _server_properties(data_dir: Path, port: int, controller_port: int, partitions: int) -> str:
    """Return server.properties for one node that is both broker and KRaft controller."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"PLAINTEXT://{LOCALHOST}:{port},CONTROLLER://{LOCALHOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOCALHOST}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.quorum.bootstrap.servers": f"{LOCALHOST}:{controller_port}",
        "log.dirs": str(data_dir / "kraft"),
        "num.partitions": str(partitions),
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    lines = [f"{key}={_escape(value)}" for key, value in settings.items()]
    return "# Written by services.local.kafka at every start.\n" + "\n".join(lines) + "\n"


def _format_storage(data_dir: Path, jvm: Sequence[str], properties: Path) -> None:
    """Format the KRaft log directory once, as a standalone dynamic quorum."""
    kraft = data_dir / "kraft"
    if (kraft / "meta.properties").is_file():
        return
    if kraft.exists():
        # An interrupted format leaves a directory the tool refuses to format again.
        shutil.rmtree(kraft)
    tool = [*jvm, "kafka.tools.StorageTool"]
    cluster_id_file = data_dir / "cluster.id"
    cluster_id = cluster_id_file.read_text().strip() if cluster_id_file.is_file() else ""
    if not cluster_id:
        cluster_id = _run([*tool, "random-uuid"], cwd=data_dir, what="making a cluster id").strip()
        cluster_id = cluster_id.splitlines()[-1].strip()
        cluster_id_file.write_text(f"{cluster_id}\n")
    command = [*tool, "format", "-t", cluster_id, "-c", str(properties), "--standalone"]
    _run(command, cwd=data_dir, what="formatting the KRaft storage")


def _spawn(argv: Sequence[str], log_path: Path) -> int:
    """Start argv detached in its own session with output to log_path; return its pid."""
    # posix_spawn rather than Popen: a Popen left running warns (ResourceWarning) when collected.
    file_actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(
        argv[0], list(argv), dict(os.environ), file_actions=file_actions, setsid=True
    )


def _wait_ready(data_dir: Path, pid: int, port: int, began: float) -> None:
    """Block until the broker answers requests and lists itself, or raise with its log."""
    deadline = began + READY_TIMEOUT_S
    while not _broker_ready(port):
        if not pid_alive(pid):
            raise ServiceUnavailable(
                f"the Kafka broker exited during startup\n--- kafka.log ---\n{_tail(data_dir)}"
            )
        if time.monotonic() > deadline:
            _terminate(pid)
            raise ServiceUnavailable(
                f"the Kafka broker was not ready on {LOCALHOST}:{port} after "
                f"{READY_TIMEOUT_S:.0f} s\n--- kafka.log ---\n{_tail(data_dir)}"
            )
        time.sleep(0.2)


def _broker_ready(port: int) -> bool:
    """Return True once the broker answers ApiVersions and Metadata names a live broker."""
    try:
        with socket.create_connection((LOCALHOST, port), timeout=2.0) as sock:
            sock.settimeout(2.0)
            body = _request(sock, api_key=18, version=0, payload=b"")
            (error,) = struct.unpack_from(">h", body, 0)
            if error != 0:
                return False
            versions = _api_versions(body)
            low, high = versions.get(3, (0, 0))
            version = max(low, 4)
            if version > min(high, 8):
                # No non-flexible Metadata version to speak; answering ApiVersions must do.
                return True
            # Metadata v4-v8: all topics (null array), no auto-creation, v8 adds two flags.
            payload = struct.pack(">i?", -1, False) + (b"\x00\x00" if version == 8 else b"")
            body = _request(sock, api_key=3, version=version, payload=payload)
            _throttle, brokers = struct.unpack_from(">ii", body, 0)
            # Metadata lists only registered, unfenced brokers: this one is ready for clients.
            return bool(brokers > 0)
    except (OSError, struct.error):
        return False


def _request(sock: socket.socket, *, api_key: int, version: int, payload: bytes) -> bytes:
    """Send one request with header v1 and return the response body after its header v0."""
    client_id = b"services.local"
    header = struct.pack(">hhih", api_key, version, 1, len(client_id)) + client_id
    message = header + payload
    sock.sendall(struct.pack(">i", len(message)) + message)
    (size,) = struct.unpack(">i", _receive(sock, 4))
    return _receive(sock, size)[4:]


def _api_versions(body: bytes) -> dict[int, tuple[int, int]]:
    """Parse an ApiVersions v0 response body into {api_key: (min, max)}."""
    (count,) = struct.unpack_from(">i", body, 2)
    versions = {}
    for index in range(count):
        key, low, high = struct.unpack_from(">hhh", body, 6 + 6 * index)
        versions[key] = (low, high)
    return versions


def _receive(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def _terminate(pid: int) -> None:
    """SIGTERM pid, give it STOP_TIMEOUT_S for a clean shutdown, then SIGKILL it."""
    for sig, grace in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while pid_alive(pid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        else:
            return
        if sig == signal.SIGTERM:
            log.warning("kafka.kill", pid=pid, after_s=grace)
    raise ServiceUnavailable(f"Kafka broker pid {pid} survived SIGKILL")


@functools.cache
def _java() -> str:
    """Return the java executable if it is Java 17 or newer, else raise ServiceUnavailable."""
    java = shutil.which("java")
    if java is None:
        raise ServiceUnavailable(
            f"Java is not on PATH; Kafka {KAFKA_VERSION} needs a Java {MIN_JAVA}+ runtime"
        )
    output = _run([java, "-version"], cwd=Path.cwd(), what="checking the Java version")
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if match is None:
        raise ServiceUnavailable(f"cannot read the Java version from: {output.strip()}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))  # "1.8.0" style numbering of Java 8 and older
    if major < MIN_JAVA:
        raise ServiceUnavailable(
            f"{java} is Java {major}; Kafka {KAFKA_VERSION} needs Java {MIN_JAVA} or newer"
        )
    return java


def _run(args: Sequence[str], *, cwd: Path, what: str, timeout: float = 120.0) -> str:
    return run_tool(args, what=what, cwd=cwd, timeout=timeout)


def _resource(name: str) -> str:
    return resources.files("services.local").joinpath(name).read_text(encoding="utf-8")


def _escape(value: str) -> str:
    # java.util.Properties treats backslashes as escapes; Windows-style paths need doubling.
    return value.replace("\\", "\\\\")


def _tail(data_dir: Path, lines: int = 60) -> str:
    return tail(data_dir / "kafka.log", lines)
