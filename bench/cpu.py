"""Where a phase's CPU went, by process kind: the benchmark and its process tree, PostgreSQL,
the Kafka broker, everything else. A ratio target on a shared box is a CPU budget, and this
shows which side spends it.

Read from /proc (Linux). Each process counts its own time and that of the children it has
reaped, so a worker that exited within the phase is counted by its parent, and a PostgreSQL
backend that closed by the postmaster; nothing is counted twice, a process being either live
(counted itself) or reaped (counted by its parent). Elsewhere the split is empty.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
KINDS = ("benchmark", "postgresql", "kafka", "other")


@dataclass
class CpuSplit:
    """CPU seconds by kind over a phase, filled in when its `measured` block ends."""

    seconds: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def per_event_us(self, events: int) -> dict[str, float]:
        """CPU microseconds an event, by kind and in total, and the cores kept busy."""
        if not self.seconds or events <= 0:
            return {}
        out = {kind: round(s / events * 1e6, 1) for kind, s in self.seconds.items()}
        out["total"] = round(sum(self.seconds.values()) / events * 1e6, 1)
        out["cores_busy"] = round(sum(self.seconds.values()) / max(self.wall_s, 1e-9), 2)
        return out


@contextmanager
def measured() -> Iterator[CpuSplit]:
    """The CPU every kind of process spent while the block ran, and its wall-clock time."""
    split = CpuSplit()
    before = cpu_seconds()
    began = time.perf_counter()
    try:
        yield split
    finally:
        after = cpu_seconds()
        split.wall_s = time.perf_counter() - began
        if before and after:
            # a process of another kind that exited unreaped by one counted here takes its
            # time with it, and a kind's difference could come out below zero
            split.seconds = {k: round(max(0.0, after[k] - before[k]), 3) for k in KINDS}


async def timed_copy(
    conn: Any, table: str, rows: Sequence[tuple[Any, ...]], columns: Sequence[str] | None = None
) -> tuple[float, dict[str, float]]:
    """COPY `rows` into `table` (an asyncpg connection); (seconds, CPU a row by process kind):
    the benchmarks' bare COPY, the reference their ratio targets are measured against."""
    with measured() as split:
        await conn.copy_records_to_table(table, records=rows, columns=columns)
    return split.wall_s, split.per_event_us(len(rows))


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far, by kind; {} without /proc."""
    if not (_PROC / "self" / "stat").exists():
        return {}
    stats = {pid: stat for pid in _pids() if (stat := _stat(pid)) is not None}
    ours = _tree(os.getpid(), {pid: s[1] for pid, s in stats.items()})
    totals = dict.fromkeys(KINDS, 0.0)
    for pid, (comm, _, ticks) in stats.items():
        totals[_kind(pid, comm, ours)] += ticks / _TICK
    return totals


def _kind(pid: int, comm: str, ours: set[int]) -> str:
    if pid in ours:
        return "benchmark"  # the projector in-process, or `profiles projector --workers N`
    if comm.startswith("postgres"):
        return "postgresql"
    if comm == "java":
        return "kafka"  # the broker `scripts/services` starts; there is no other JVM here
    return "other"


def _pids() -> Iterator[int]:
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, own and reaped children's CPU ticks) of a live process."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:  # gone meanwhile: its parent counts it once it is reaped
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    # fields 4, 14-17 of proc(5): ppid, utime, stime, cutime, cstime
    return comm, int(rest[1]), sum(int(x) for x in rest[11:15])


def _tree(root: int, parents: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree
