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
