"""The event-log port: what the ingest side and the projector runner need of a log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from contracts import EncodedEvent, Event


@dataclass(frozen=True)
class Position:
    """Where an appended event landed."""

    partition: int
    offset: int


@dataclass(frozen=True)
class LogRecord:
    """One record as read from the log: raw bytes, decoded by the consumer's owner."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


# Given newly assigned partitions, return the next offset to read in each (the checkpoints).
SeekSource = Callable[[Sequence[int]], Awaitable[dict[int, int]]]


class LogConsumer(Protocol):
    """Reads records from the positions the owner stores; never commits on its own."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def poll(self, max_records: int, max_wait: float) -> list[LogRecord]: ...
    async def seek(self, positions: dict[int, int]) -> None: ...
    def assignment(self) -> frozenset[int]: ...


class EventLog(Protocol):
    """An append-only log of canonical events, ordered per profile."""

    topic: str
    # True when the log itself refuses a second event with an id it holds: its readers need
    # not dedupe (Kafka keeps a retried publish with a new offset; the PostgreSQL table does not)
    unique_ids: bool

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def append(
        self, events: Sequence[Event | EncodedEvent], *, within: asyncpg.Connection | None = None
    ) -> list[Position]:
        """Append in order; `within`: a connection whose open transaction the append joins.

        The PostgreSQL log joins it, so the caller's own writes and the events commit or roll
        back together. Kafka cannot share a PostgreSQL transaction and appends on its own.
        """
        ...

    async def append_raw(self, key: bytes, value: bytes) -> Position: ...
    async def ends(self) -> dict[int, int]:
        """The next offset of each partition: what a reader has to reach to be caught up."""
        ...

    def consumer(self, group: str, on_assign: SeekSource) -> LogConsumer: ...
