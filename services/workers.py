"""Several processes of one role in one consumer group, supervised: how a role uses more cores.

One Python process folds on one core; Kafka splits the partitions of a group between its
members, so N processes fold N partition groups in parallel. On the PostgreSQL log only one
member of a group is active at a time (an advisory lock); the others wait as hot standbys.

Members are forked from the supervisor, which has imported the role's code already: a member
starts without importing it again (0.7-0.9 s of CPU each, per `services.cli`'s import) and
shares those pages with the supervisor until it writes to them. The supervisor never runs an
event loop or a thread, so a fork copies no lock held elsewhere and no loop's state.

Each member is a static member of its Kafka groups (KIP-345), named after the supervisor and
its own index. A member restarted under its name takes its partitions back at once: with
dynamic members the newcomer's join made the group wait for the dead member's session to
expire, all partitions revoked, and a SIGKILLed member stalled the whole group for 8.7 s. The
supervisor's name is PROFILES_GROUP_INSTANCE, or this host's name and the lowest slot no other
supervisor of the role holds here (a lock file), so that a supervisor started again on this
host gets its members' names back and two at once never share one.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import structlog

from services.settings import Settings

log = structlog.get_logger(__name__)

# seconds before a dead member is forked again, by how many times in a row it died: its
# partitions wait (a static member gets them back as soon as it is up), while a member that
# dies at once again and again must not spin the supervisor
RESTART_DELAYS_S = (0.1, 0.5, 2.0, 5.0)
STABLE_AFTER_S = 30.0  # a member that lived this long before dying starts the count again
# one member's work, given its index, run in a forked child; may raise SystemExit
Member = Callable[[int], object]


@dataclass
class Supervisor:
    """Keeps `count` forked copies of `member` running until SIGTERM/SIGINT, then stops them."""

    member: Member
    count: int
    grace_s: float = 30.0
    _children: list[int] = field(default_factory=list)  # pids, by worker index
    _stopping: bool = False
    _started: list[float] = field(default_factory=list)  # when each was forked (monotonic)
    _deaths: list[int] = field(default_factory=list)  # deaths in a row, by worker index
    _due: dict[int, float] = field(default_factory=dict)  # dead index -> when to fork it

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        # what exists now is shared with every member: frozen, no collection of a member
        # writes to those objects' headers (which would copy their pages one by one)
        gc.collect()
        gc.freeze()
        self._deaths = [0] * self.count
        self._started = [0.0] * self.count
        self._children = [self._spawn(i) for i in range(self.count)]
        try:
            while not self._stopping:
                self._restart_the_dead()
                time.sleep(0.05)
        finally:
            self._terminate()
        return 0

    def _restart_the_dead(self) -> None:
        now = time.monotonic()
        for i, pid in enumerate(self._children):
            if i in self._due:
                if now >= self._due[i] and not self._stopping:
                    del self._due[i]
                    self._children[i] = self._spawn(i)
                continue
            code = _reap(pid)
            if code is None or self._stopping:
                continue
            if now - self._started[i] >= STABLE_AFTER_S:
                self._deaths[i] = 0
            delay = RESTART_DELAYS_S[min(self._deaths[i], len(RESTART_DELAYS_S) - 1)]
            self._deaths[i] += 1
            self._due[i] = now + delay
            log.warning("workers.restart", worker=i, exit_code=code, in_s=delay)

    def _spawn(self, index: int) -> int:
        if threading.active_count() > 1:  # a fork would copy a lock another thread may hold
            raise RuntimeError("the supervisor must not run threads: it forks its members")
        sys.stdout.flush()
        sys.stderr.flush()
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:  # the member: never returns into the supervisor's code
            os._exit(_run_member(self.member, supervisor, index))
        self._started[index] = time.monotonic()
        log.info("workers.started", worker=index, pid=pid)
        return pid

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _terminate(self) -> None:
        running = [
            pid for i, pid in enumerate(self._children) if i not in self._due and _reap(pid) is None
        ]
        for pid in running:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while running and time.monotonic() < deadline:
            time.sleep(0.05)
            running = [pid for pid in running if _reap(pid) is None]
        for pid in running:
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _run_member(member: Member, supervisor: int, index: int) -> int:
    """A member's exit code; its signals are those of a fresh interpreter until its role sets
    its own."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _end_with(supervisor)
    code = 0
    try:
        member(index)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _end_with(supervisor: int) -> None:
    """Have the kernel send this member SIGTERM when its supervisor dies, however it dies: a
    SIGKILLed supervisor (or one the OOM killer took) would otherwise leave its members
    running unsupervised, and a supervisor started again would add as many beside them.
    Linux only (`prctl`); elsewhere members outlive a killed supervisor."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        log.warning("workers.no_parent_death_signal", errno=ctypes.get_errno())
    elif os.getppid() != supervisor:  # it died between the fork and the prctl
        os.kill(os.getpid(), signal.SIGTERM)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _reap(pid: int) -> int | None:
    """The exit code of a member that ended (reaping it), None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # reaped before
        return -1
    return os.waitstatus_to_exitcode(status) if done else None


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile; reaped by the caller
        os.kill(pid, sig)


def supervise(settings: Settings, workers: int, role: Sequence[str]) -> int:
    """Run `workers` processes of a `profiles` role (projector, intake) until SIGTERM/SIGINT."""
    from services.runtime import database_url

    # the embedded PostgreSQL is started here, once, rather than raced for by every child
    url, embedded = database_url(settings)
    # the members' settings are the supervisor's, flags included (a member parses only the
    # role's own options); a member must not read the supervisor's worker count and start
    # members of its own
    env = {
        **settings.as_env(),
        "DATABASE_URL": url,
        "PROFILES_PROJECTOR_WORKERS": "1",
        "PROFILES_INTAKE_WORKERS": "1",
    }
    if settings.kafka_bootstrap:
        env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap
    slot: IO[str] | None = None
    if settings.group_instance:
        name = settings.group_instance
    else:
        number, slot = claim_slot(role[0])
        name = f"{socket.gethostname()}-{role[0]}-{number}"

    def member(index: int) -> None:
        from services.cli import app  # imported by the supervisor already: no cost here

        os.environ.update(env, PROFILES_GROUP_INSTANCE=f"{name}-{index}")
        app(args=list(role), prog_name="profiles")

    # imported before the forks, shared by every member: the role's code and its event loop
    import uvloop  # noqa: F401

    import services.cli  # noqa: F401

    try:
        return Supervisor(member, workers).run()
    finally:
        if slot is not None:
            slot.close()
        if embedded is not None:
            from services.local.postgres import stop_postgres

            stop_postgres(embedded)


def claim_slot(role: str, directory: Path | None = None) -> tuple[int, IO[str]]:
    """The lowest slot number no other live supervisor of `role` holds on this host, and the
    open lock file that holds it (closing it, or the process ending however it ends, frees
    it). A file another user made, which this one may not open, counts as taken."""
    folder = Path(tempfile.gettempdir()) if directory is None else directory
    for number in range(1024):
        try:
            held = (folder / f"profiles-{role}-{number}.lock").open("a")
        except PermissionError:
            continue
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.close()
            continue
        return number, held
    raise RuntimeError(f"no free supervisor slot for {role} in {folder}")
