"""structlog, configured once: JSON in production, console in development, no personal data."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values are personal data: masked wherever they appear in an event dict.
PERSONAL_KEYS = frozenset(
    {"email", "phone", "phones", "name", "first_name", "last_name", "ip", "reg_ip"}
)


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask personal data so that it never reaches a log sink in clear."""
    for key in PERSONAL_KEYS & event_dict.keys():
        event_dict[key] = "***"
    return event_dict


def configure(fmt: str = "console", level: int = logging.INFO) -> None:
    """Configure structlog; `fmt` is "json" in production."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # plain tracebacks: rich/better-exceptions renderers print local variables (personal data)
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info
            if fmt == "json"
            else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
