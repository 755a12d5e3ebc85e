"""Time-ordered ids (UUIDv7) for events and subscriptions: layout, order, determinism."""

from __future__ import annotations

import os
import time
import uuid

from services.event_ids import derived_id, id_at, new_id


def _ms(value: uuid.UUID) -> int:
    return value.int >> 80


def test_a_new_id_is_version_7_with_the_time_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= _ms(made) <= after


def test_ids_made_later_sort_after_as_postgresql_compares_them() -> None:
    # PostgreSQL orders uuid values by their 16 bytes, as Python orders their integers
    earlier = new_id()
    time.sleep(0.003)
    later = new_id()
    assert earlier.bytes < later.bytes


def test_ids_of_one_millisecond_differ() -> None:
    made = [new_id() for _ in range(50_000)]
    assert len(set(made)) == len(made)


def test_a_forked_process_makes_other_ids() -> None:
    # random bits come from the OS, not from a generator state a fork would copy
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, b"".join(new_id().bytes for _ in range(100)))
        os._exit(0)
    os.close(write)
    mine = {new_id() for _ in range(100)}
    raw = b""
    while chunk := os.read(read, 4096):
        raw += chunk
    os.close(read)
    os.waitpid(pid, 0)
    theirs = {uuid.UUID(bytes=raw[i : i + 16]) for i in range(0, len(raw), 16)}
    assert len(theirs) == 100
    assert not mine & theirs


def test_a_derived_id_is_the_same_for_the_same_job_and_row() -> None:
    job = new_id()
    assert derived_id(job, 7) == derived_id(job, 7)
    rows = {derived_id(job, n) for n in range(10_000)}
    assert len(rows) == 10_000
    assert derived_id(new_id(), 7) != derived_id(job, 7)


def test_a_derived_id_sits_at_its_jobs_time() -> None:
    job = new_id()
    row = derived_id(job, 3)
    assert row.version == 7
    assert row.variant == uuid.RFC_4122
    assert _ms(row) == _ms(job)


def test_a_job_begun_with_a_random_id_keeps_its_name_based_ids() -> None:
    # a job begun before time-ordered ids resumes with the ids its first chunks were given
    old_job = uuid.uuid4()
    assert derived_id(old_job, 11) == uuid.uuid5(old_job, "11")


def test_an_id_at_a_given_millisecond_keeps_it_and_its_random_bits() -> None:
    ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    made = id_at(ms, (1 << 74) - 1)
    assert _ms(made) == ms
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert id_at(ms, 0) < made
    assert id_at(ms + 1, 0) > made
