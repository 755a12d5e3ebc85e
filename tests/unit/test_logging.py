"""Personal data never reaches a log sink in clear."""

from __future__ import annotations

import io
import json
import logging

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
