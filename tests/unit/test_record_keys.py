"""A record folds only when keyed by its subject's canonical text (DESIGN: per-profile order
holds only if all of a profile's records share a partition, and the partitioner hashes the key
bytes): any other spelling of the same id is refused, as `str(subject).encode()` would."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.projector import keyed_by_subject

SUBJECT = uuid.UUID("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff")


def test_the_canonical_text_is_the_key() -> None:
    assert keyed_by_subject(b"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff", SUBJECT)


@pytest.mark.parametrize(
    "key",
    [
        None,
        b"",
        b"0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0FF",  # upper case: another partition
        b"0f1e2d3c4b5a49788695a4b3c2d1e0ff",  # no hyphens
        b"{0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff}",
        b"urn:uuid:0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff",
        b"0f1e2d3c4-b5a-4978-8695-a4b3c2d1e0ff",  # a hyphen moved
        b"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0fe",  # another id
        b" f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff",
    ],
)
def test_any_other_key_is_refused(key: bytes | None) -> None:
    assert not keyed_by_subject(key, SUBJECT)


@given(st.uuids(), st.integers(0, 35), st.binary(min_size=1, max_size=1), st.booleans())
def test_agrees_with_comparing_the_text(
    subject: uuid.UUID, at: int, byte: bytes, change: bool
) -> None:
    """The canonical text with any one byte changed (or not) is accepted exactly when it is
    still the canonical text."""
    text = str(subject).encode()
    key = text[:at] + byte + text[at + 1 :] if change else text
    assert keyed_by_subject(key, subject) == (key == text)
