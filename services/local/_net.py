"""Small TCP and process helpers shared by the local server launchers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from services.local.errors import ServiceUnavailable

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """Return True if nothing listens on host:port and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def accepts(port: int, host: str = LOCALHOST, timeout: float = 1.0) -> bool:
    """Return True if a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_int(path: Path) -> int | None:
    """Read an integer file written by write_int, None if absent or garbled."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_int(path: Path, value: int) -> None:
    """Write an integer file atomically so a crash never leaves half a number."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{value}\n")
    tmp.replace(path)


def pid_alive(pid: int) -> bool:
    """Return True if pid is a live (not zombie) process; reaps it if it is our dead child."""
    try:
        # A child we spawned stays a zombie until reaped, and kill(pid, 0) succeeds on zombies.
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    return stat.rpartition(")")[2].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    """Return the argv of pid as the kernel reports it, empty if unknown."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on path so concurrent starters do not race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_tool(args: Sequence[str], *, what: str, cwd: Path, timeout: float, **popen: Any) -> str:
    """Run a tool to completion and return its output; any failure becomes ServiceUnavailable."""
    # A file, not a pipe: a chatty tool cannot block on a full pipe, and the postmaster that
    # pg_ctl forks would otherwise keep a pipe open forever.
    with tempfile.TemporaryFile("w+") as output:
        try:
            subprocess.run(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                timeout=timeout,
                check=True,
                text=True,
                **popen,
            )
        except FileNotFoundError as err:
            raise ServiceUnavailable(f"{what}: {args[0]} not found: {err}") from err
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            output.seek(0)
            raise ServiceUnavailable(f"{what} failed: {err}\n{output.read()}") from err
        output.seek(0)
        return output.read()


def tail(path: Path, lines: int) -> str:
    """The last lines of a server log, for error messages; "(no log)" when unreadable."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
