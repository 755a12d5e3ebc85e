"""The `--workers` supervisor: forked members, a dead one forked again, SIGTERM stops them all."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.workers import claim_slot

_SUPERVISOR = """
import os, sys, time
from services.workers import Supervisor

def member(index):
    with open(sys.argv[1], "a") as f:
        f.write(f"{os.getpid()}:{index}\\n")
    time.sleep(120)  # until signalled: SIGTERM's default action ends it

sys.exit(Supervisor(member, 2, grace_s=5).run())
"""


def _started(path: Path, at_least: int) -> list[tuple[int, int]]:
    """(pid, index) of each member started so far, in order."""
    for _ in range(200):
        text = path.read_text() if path.exists() else ""
        members = [(int(p), int(i)) for p, i in (line.split(":") for line in text.split())]
        if len(members) >= at_least:
            return members
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
        first = _started(started, 2)
        assert supervisor.pid not in [pid for pid, _ in first]
        assert sorted(index for _, index in first) == [0, 1]
        killed_pid, killed_index = first[0]
        os.kill(killed_pid, signal.SIGKILL)
        again = _started(started, 3)  # forked again after the restart delay
        assert again[:2] == first
        assert again[2][1] == killed_index  # under the dead one's index: its group name
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(10) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    # every member ended with the supervisor (reaped by it: none is left, not even a zombie)
    assert not any(_alive(pid) for pid, _ in again)


def test_members_end_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed supervisor runs no shutdown code: the kernel's parent-death signal (SIGTERM)
    ends its members, so none is left folding unsupervised beside the next supervisor."""
    started = tmp_path / "members"
    supervisor = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, str(started)])
    try:
        members = [pid for pid, _ in _started(started, 2)]
    finally:
        supervisor.kill()
        supervisor.wait(10)
    for _ in range(100):  # orphans are reaped by init once they end
        if not any(_alive(pid) for pid in members):
            break
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in members)


def test_supervisors_of_one_role_on_one_host_hold_distinct_slots(tmp_path: Path) -> None:
    """Members are named after their supervisor's slot: two supervisors at once never share
    a slot (their members would fence each other in the group), and one started again after
    another ended gets the freed slot, so its members take their names back."""
    first, held_first = claim_slot("projector", tmp_path)
    second, held_second = claim_slot("projector", tmp_path)
    other_role, held_other = claim_slot("intake", tmp_path)
    assert (first, second, other_role) == (0, 1, 0)
    held_first.close()  # the first supervisor ended
    again, held_again = claim_slot("projector", tmp_path)
    assert again == 0
    for held in (held_second, held_other, held_again):
        held.close()


def test_a_killed_supervisors_slot_is_free_again(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from services.workers import claim_slot; "
            "held = claim_slot('projector', Path(sys.argv[1])); print('held', flush=True); "
            "time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        taken, held = claim_slot("projector", tmp_path)
        assert taken == 1  # slot 0 is the live holder's
        held.close()
    finally:
        holder.kill()
        holder.communicate(timeout=10)  # reaped, its pipe closed
    freed, held = claim_slot("projector", tmp_path)  # the kernel released the dead one's lock
    assert freed == 0
    held.close()


_FAILING = """
import os, sys, time
from services.workers import Supervisor

def member(index):
    with open(sys.argv[1], "a") as f:
        f.write(f"{time.monotonic()}\\n")
    sys.exit(3)  # dies at once, every time

sys.exit(Supervisor(member, 1, grace_s=5).run())
"""


def test_a_member_that_keeps_dying_is_restarted_at_once_then_less_and_less_often(
    tmp_path: Path,
) -> None:
    """The first restart comes after 0.1 s (a static member's partitions wait for it), the
    next ones after 0.5 s, 2 s, then 5 s: a member that dies at once cannot spin the box."""
    forks = tmp_path / "forks"
    supervisor = subprocess.Popen([sys.executable, "-c", _FAILING, str(forks)])
    try:
        for _ in range(200):
            times = [float(t) for t in forks.read_text().split()] if forks.exists() else []
            if len(times) >= 4:
                break
            time.sleep(0.05)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(10) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) >= 3, times
    assert gaps[0] < 0.45  # 0.1 s, and the supervisor's 0.05 s rounds
    assert 0.45 <= gaps[1] < 1.2
    assert gaps[2] >= 1.9
