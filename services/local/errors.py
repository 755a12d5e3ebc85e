"""Errors raised when a local PostgreSQL or Kafka server cannot be had."""

from __future__ import annotations


# The name is part of the public API the callers were promised, hence no "Error" suffix.
class ServiceUnavailable(RuntimeError):  # noqa: N818
    """A local server could not be provided; the message says exactly why."""
