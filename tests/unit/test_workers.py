"""The `--workers` supervisor: forked members, a dead one forked again, SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_SUPERVISOR = """
import os, sys, time
from services.workers import Supervisor

def member():
    with open(sys.argv[1], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(120)  # until signalled: SIGTERM's default action ends it

sys.exit(Supervisor(member, 2, grace_s=5).run())
"""


def _pids(path: Path, at_least: int) -> list[int]:
    for _ in range(200):
        pids = [int(p) for p in path.read_text().split()] if path.exists() else []
        if len(pids) >= at_least:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} members started: {path.read_text()!r}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_members_are_forked_restarted_and_stopped(tmp_path: Path) -> None:
    started = tmp_path / "members"
    supervisor = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, str(started)])
    try:
        first = _pids(started, 2)
        assert supervisor.pid not in first
        os.kill(first[0], signal.SIGKILL)
        again = _pids(started, 3)  # forked again after the restart delay
        assert again[:2] == first
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(10) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    # every member ended with the supervisor (reaped by it: none is left, not even a zombie)
    assert not any(_alive(pid) for pid in again)


def test_members_end_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed supervisor runs no shutdown code: the kernel's parent-death signal (SIGTERM)
    ends its members, so none is left folding unsupervised beside the next supervisor."""
    started = tmp_path / "members"
    supervisor = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, str(started)])
    try:
        members = _pids(started, 2)
    finally:
        supervisor.kill()
        supervisor.wait(10)
    for _ in range(100):  # orphans are reaped by init once they end
        if not any(_alive(pid) for pid in members):
            break
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in members)
