"""structlog, configured once: JSON in production, console in development, no personal data."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from domain.fields import STANDARD_FIELDS

# Keys whose values are personal data, masked wherever they appear in an event dict: the
# contacts, every standard profile field (names, birthday, addresses, IPs, locations), and
# whole value maps (a profile's fields, an event's data) that may hold any of them.
PERSONAL_KEYS = frozenset(
    {"email", "phone", "phones", "contact", "name", "ip", "fields", "custom", "data", "summary"}
    | set(STANDARD_FIELDS)
)
_PERSONAL_SUFFIXES = ("_ip", "email", "phone", "_name")


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask personal data so that it never reaches a log sink in clear."""
    for key in event_dict.keys() & PERSONAL_KEYS:
        event_dict[key] = "***"
    for key in [k for k in event_dict if k.endswith(_PERSONAL_SUFFIXES)]:
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
        logger_factory=_line_logger,
        cache_logger_on_first_use=True,
    )
    # the libraries' warnings and errors (the root logger's level), once however often this runs
    root = logging.getLogger()
    if not any(isinstance(h, _LibraryRecords) for h in root.handlers):
        root.addHandler(_LibraryRecords())


class _LibraryRecords(logging.Handler):
    """The records of the libraries (asyncpg, aiokafka, uvicorn) as lines of this log, in its
    format: a JSON log stays one JSON object a line, where asyncpg printed a retry's traceback
    and aiokafka its reconnects in plain text between them.

    An exception is kept as its type only: its message or a traceback may quote a statement's
    values (an email in a unique-key violation).
    """

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"logger": record.name}
        if record.exc_info and record.exc_info[0] is not None:
            fields["error"] = record.exc_info[0].__name__
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a library's format string and arguments disagree
            message = str(record.msg)
        level = record.levelname.lower()
        emit = getattr(structlog.get_logger(), level, None) or structlog.get_logger().warning
        emit(message, **fields)


class LineLogger:
    """Writes each line whole: the line and its newline in one write, to the `sys.stdout` of
    the moment.

    `--workers` members share stdout, which the image leaves unbuffered (PYTHONUNBUFFERED=1):
    `print` (structlog's PrintLogger) wrote a line and its newline apart, and two members' lines
    glued together. structlog's WriteLogger writes once but keeps the stdout it was made with,
    which fails once stdout is replaced (a test's capture, a redirect).
    """

    def msg(self, message: str) -> None:
        out = sys.stdout
        out.write(message + "\n")
        out.flush()

    debug = info = warning = warn = error = err = critical = fatal = exception = log = msg


_LINES = LineLogger()


def _line_logger(*_: Any) -> LineLogger:
    return _LINES
