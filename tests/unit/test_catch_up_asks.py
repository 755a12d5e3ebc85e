"""How much the projector asks its log for next (`Projector._next_ask`): batches grow while it
is behind, hold while a log hands out less than asked yet still plenty (Kafka gives what its
last fetches brought), and fall back at the head of the log, where latency matters."""

from __future__ import annotations

from typing import Any

from services.projector import Projector


def _projector(batch_size: int, max_batch: int) -> Projector:
    nothing: Any = None  # the asks are arithmetic: no pool, log or projection is touched
    return Projector(nothing, nothing, "p", nothing, batch_size=batch_size, max_batch=max_batch)


def test_a_full_poll_doubles_the_ask_up_to_the_largest_batch() -> None:
    p = _projector(5000, 40000)
    assert p._next_ask(5000, 5000) == 10000
    assert p._next_ask(20000, 20000) == 40000
    assert p._next_ask(40000, 40000) == 40000


def test_a_short_poll_that_still_brought_a_batch_keeps_the_ask() -> None:
    p = _projector(5000, 40000)
    assert p._next_ask(40000, 17000) == 40000  # behind: the consumer had no more at hand
    assert p._next_ask(40000, 5000) == 40000


def test_a_small_poll_falls_back_to_the_head_of_log_batch() -> None:
    p = _projector(5000, 40000)
    assert p._next_ask(40000, 4999) == 5000
    assert p._next_ask(40000, 0) == 5000


def test_without_catch_up_batches_the_ask_never_moves() -> None:
    p = _projector(5000, 0)  # `profiles serve`
    assert p._next_ask(5000, 5000) == 5000
    assert p._next_ask(5000, 100) == 5000
