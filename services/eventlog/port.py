"""The event-log port: what the ingest side and the projector runner need of a log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import asyncpg

from contracts import EncodedEvent, Event


@dataclass(frozen=True)
class Position:
    """Where an appended event landed."""

    partition: int
    offset: int


# `Position.partition` of an event that is committed to the outbox but was not published yet
# when its writer stopped waiting (the broker away): its `offset` is the outbox batch's id. A
# consistency token carrying one waits for the batch to be published, then for its positions.
OUTBOX = -1


@dataclass(frozen=True)
class Staged:
    """Events a transaction staged: where they are (or will be, once `publish` ran)."""

    positions: tuple[Position, ...] = ()  # known at once: the log joined the transaction
    outbox: tuple[int, ...] = ()  # batches of the outbox, published after the commit
    counts: tuple[int, ...] = ()  # events in each of those batches


class LogRecord(NamedTuple):
    """One record as read from the log: raw bytes, decoded by the consumer's owner (a tuple:
    a catch-up poll makes 40,000, and a frozen dataclass costs twice as much to build)."""

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
    async def append(self, events: Sequence[Event | EncodedEvent]) -> list[Position]:
        """Append in order, on its own: for events no write-model change depends on."""
        ...

    async def stage(
        self, conn: asyncpg.Connection, events: Sequence[Event | EncodedEvent]
    ) -> Staged:
        """Stage events in the open transaction of `conn`: they commit or roll back with it.

        The PostgreSQL log appends them on that connection; Kafka, which cannot join a
        PostgreSQL transaction, puts them in its outbox. Call `publish` after the commit.
        """
        ...

    async def publish(self, staged: Staged) -> list[Position]:
        """After the commit: the staged events on the log, and where each one is."""
        ...

    async def append_raw(self, key: bytes, value: bytes) -> Position: ...
    async def ends(self) -> dict[int, int]:
        """The next offset of each partition: what a reader has to reach to be caught up."""
        ...

    def consumer(self, group: str, on_assign: SeekSource) -> LogConsumer: ...
