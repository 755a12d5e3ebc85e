"""The benchmarks' CPU split: a process's work is counted while it lives and once reaped."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cpu import measured

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc only")

_BURN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"


def test_this_process_cpu_is_the_benchmarks() -> None:
    with measured() as split:
        end = time.process_time() + 0.4
        while time.process_time() < end:
            pass
    assert split.seconds["benchmark"] >= 0.3
    assert split.per_event_us(1000)["benchmark"] >= 300.0
    assert split.per_event_us(1000)["cores_busy"] > 0.5


def test_a_child_that_exited_is_counted_by_its_parent() -> None:
    """A `--workers` member reaped within the phase: gone from /proc, its time in ours."""
    with measured() as split:
        subprocess.run([sys.executable, "-c", _BURN], check=True)
    assert split.seconds["benchmark"] >= 0.3
