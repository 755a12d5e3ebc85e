"""Personal data never reaches a log sink in clear."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from services.logging import configure


def test_personal_fields_are_masked_in_json_logs(capsys: object) -> None:
    out = io.StringIO()
    configure("json", logging.INFO)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(out))
    try:
        structlog.get_logger("t").info(
            "profile.imported", email="ann@example.com", phones=["+4712345678"], ip="10.1.2.3", n=3
        )
    finally:
        structlog.reset_defaults()
    line = json.loads(out.getvalue())
    assert line["email"] == line["phones"] == line["ip"] == "***"
    assert line["n"] == 3
    assert "ann@example.com" not in out.getvalue()


def test_every_standard_field_and_value_map_is_masked() -> None:
    """The safety net covers more than the contacts: names, birthday, IPs, whole value maps."""
    out = io.StringIO()
    configure("json", logging.INFO)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(out))
    try:
        structlog.get_logger("t").info(
            "profile.changed",
            middle_name="Quentin",
            birthday="1990-01-02",
            latest_ip="10.9.8.7",
            optin_ip="10.9.8.6",
            billing_email="q@example.com",
            custom={"note": "secret"},
            profile_id="00000000-0000-0000-0000-000000000001",
        )
    finally:
        structlog.reset_defaults()
    text = out.getvalue()
    for secret in ("Quentin", "1990-01-02", "10.9.8.7", "10.9.8.6", "q@example.com", "secret"):
        assert secret not in text
    assert json.loads(text)["profile_id"].endswith("1")  # the id is not personal data


_MEMBERS = """
import os, sys
import structlog
from services.logging import configure

configure("json")
log = structlog.get_logger("t")
children = []
for member in range(4):
    pid = os.fork()
    if pid == 0:
        for n in range(int(sys.argv[1])):
            log.info("member.line", member=member, n=n)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


def test_forked_members_sharing_unbuffered_stdout_write_whole_json_lines(tmp_path: Path) -> None:
    """`--workers N` members share the supervisor's stdout, unbuffered in the image
    (PYTHONUNBUFFERED=1): a line and its newline must go out in one write, or two members'
    lines glue together and a log shipper reads neither (the crash test once failed on one)."""
    path = tmp_path / "members.log"
    with path.open("wb") as out:
        subprocess.run(
            [sys.executable, "-u", "-c", _MEMBERS, "3000"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parents[2],
            check=True,
            timeout=120,
        )
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 3000
    seen = {(line["member"], line["n"]) for line in map(json.loads, lines)}
    assert len(seen) == 4 * 3000


def test_library_records_become_lines_of_the_log_without_their_exception_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """asyncpg printed a retry's whole traceback in plain text between the JSON lines; now each
    record of a library is one JSON line, its exception reduced to its type."""
    configure("json", logging.INFO)
    try:
        raise ValueError("duplicate key: Key (email)=(ann@example.com) already exists")
    except ValueError:
        logging.getLogger("asyncpg.pool").warning(
            "Failed to restore the pool connection floor; retrying", exc_info=True
        )
    logging.getLogger("aiokafka").error("Unable connect to node with id %s", 1)
    structlog.reset_defaults()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["event"], r["logger"], r["level"], r.get("error")) for r in lines] == [
        ("Failed to restore the pool connection floor; retrying", "asyncpg.pool", "warning",
         "ValueError"),
        ("Unable connect to node with id 1", "aiokafka", "error", None),
    ]  # fmt: skip
    assert "ann@example.com" not in json.dumps(lines)
