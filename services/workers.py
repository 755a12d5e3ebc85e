"""Several processes of one role in one consumer group, supervised: how a role uses more cores.

One Python process folds on one core; Kafka splits the partitions of a group between its
members, so N processes fold N partition groups in parallel. On the PostgreSQL log only one
member of a group is active at a time (an advisory lock); the others wait as hot standbys.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

import structlog

from services.settings import Settings

log = structlog.get_logger(__name__)

RESTART_DELAY_S = 1.0


@dataclass
class Supervisor:
    """Keeps `count` copies of a command running until SIGTERM/SIGINT, then stops them."""

    command: Sequence[str]
    count: int
    env: Mapping[str, str] | None = None
    grace_s: float = 30.0
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _stopping: bool = False

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        self._children = [self._spawn(i) for i in range(self.count)]
        try:
            while not self._stopping:
                for i, child in enumerate(self._children):
                    code = child.poll()
                    if code is not None and not self._stopping:
                        # a crashed member loses its partitions to the others until it is back
                        log.warning("workers.restart", worker=i, exit_code=code)
                        time.sleep(RESTART_DELAY_S)
                        self._children[i] = self._spawn(i)
                time.sleep(0.2)
        finally:
            self._terminate()
        return 0

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(list(self.command), env=self.env)  # noqa: S603 -- our own argv
        log.info("workers.started", worker=index, pid=child.pid)
        return child

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _terminate(self) -> None:
        for child in self._children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for child in self._children:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def supervise(settings: Settings, workers: int, role: Sequence[str]) -> int:
    """Run `workers` processes of a `profiles` role (projector, intake) until SIGTERM/SIGINT."""
    from services.runtime import database_url

    # the embedded PostgreSQL is started here, once, rather than raced for by every child
    url, embedded = database_url(settings)
    # a member must not read the supervisor's worker count and start members of its own
    env = dict(os.environ, DATABASE_URL=url, PROFILES_PROJECTOR_WORKERS="1")
    env["PROFILES_INTAKE_WORKERS"] = "1"
    if settings.kafka_bootstrap:
        env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap
    command = [sys.executable, "-m", "services", *role]
    try:
        return Supervisor(command, workers, env=env).run()
    finally:
        if embedded is not None:
            from services.local.postgres import stop_postgres

            stop_postgres(embedded)
