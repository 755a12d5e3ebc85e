"""The batch processes' garbage-collector settings (performance, DESIGN 5)."""

from __future__ import annotations

import gc

from services.runtime import tune_gc


def test_tune_gc_freezes_startup_objects_and_raises_the_first_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] >= 10_000
        assert gc.get_freeze_count() > 0  # startup objects are out of every later scan
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
