"""The command line's roles that serve no HTTP start without the web stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_PROBE = (
    "import sys, services.cli\n"
    "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))"
)


def test_the_cli_loads_no_web_framework_until_a_role_serves_http() -> None:
    """`profiles projector` (each `--workers` member), `profiles keys` and `profiles import`
    import the CLI module; FastAPI and uvicorn were a quarter of its import time, paid again by
    every restarted projector member before it could rejoin its group."""
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert probe.stdout.strip() == "[]"
