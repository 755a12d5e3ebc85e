"""Which failures the roles wait out, and how long they pause between tries."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError

from services.consistency import parse, token
from services.eventlog.port import OUTBOX, Position
from services.outages import ROLE_TRANSIENT, TRANSIENT, Backoff, pause


def test_pauses_double_up_to_the_longest_and_start_over_after_progress() -> None:
    backoff = Backoff(first=0.25, longest=5.0)
    assert [backoff.next_pause() for _ in range(8)] == [0.25, 0.5, 1, 2, 4, 5, 5, 5]
    backoff.reset()
    assert backoff.next_pause() == 0.25


def test_a_long_outage_does_not_overflow_the_pause() -> None:
    backoff = Backoff(attempts=10_000)
    assert backoff.next_pause() == backoff.longest


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("the underlying connection is closed"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        KafkaConnectionError(),
        TimeoutError(),
    ],
)
def test_outages_are_transient(error: Exception) -> None:
    assert isinstance(error, TRANSIENT)


@pytest.mark.parametrize(
    "error",
    [
        # a statement timeout comes back on every retry: a batch must be split, not retried
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.UniqueViolationError("duplicate key"),
        ValueError("a bug"),
    ],
)
def test_faults_of_the_work_are_not(error: Exception) -> None:
    assert not isinstance(error, ROLE_TRANSIENT)


async def test_a_pause_ends_early_when_the_role_is_stopped() -> None:
    stop = asyncio.Event()
    stop.set()
    began = asyncio.get_running_loop().time()
    await pause(30.0, stop)
    assert asyncio.get_running_loop().time() - began < 1.0


def test_a_token_names_the_newest_outbox_batch_a_write_left_pending() -> None:
    written = [Position(2, 40), Position(OUTBOX, 7), Position(OUTBOX, 9), Position(2, 41)]
    assert parse(token(written)) == {2: 41, OUTBOX: 9}
