"""Errors raised when a local PostgreSQL or Kafka server cannot be had."""

from __future__ import annotations


class ServiceUnavailable(RuntimeError):
    """A local server could not be provided; the message says exactly why."""
