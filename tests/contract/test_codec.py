"""The wire contract: every version ever published still decodes; bad input is named, not echoed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import contracts
from contracts import CURRENT_VERSIONS, DecodeError, decode, encode
from contracts.upcast import upcast

GOLDEN = sorted((Path(__file__).parent / "golden").glob("*.json"))


def _isort_key(name: str) -> tuple[int, str]:
    # the order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_names_are_sorted_and_exported() -> None:
    assert contracts.__all__ == sorted(contracts.__all__, key=_isort_key)
    assert len(set(contracts.__all__)) == len(contracts.__all__)
    for name in contracts.__all__:
        assert hasattr(contracts, name)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_event_decodes_and_round_trips(path: Path) -> None:
    raw = path.read_bytes()
    event = decode(raw)
    assert f"{event.type}.v{event.schema_version}" == path.stem
    assert decode(encode(event)) == event


def test_every_current_type_has_a_golden_file() -> None:
    stems = {p.stem for p in GOLDEN}
    for event_type, version in CURRENT_VERSIONS.items():
        assert f"{event_type}.v{version}" in stems


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "profile.exploded", "schema_version": 1}', "unknown event type"),
        (b'{"type": "profile.imported", "schema_version": 99}', "unsupported schema_version"),
        (b'{"type": "profile.imported", "schema_version": 1}', "invalid event"),
    ],
)
def test_bad_message_is_refused_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(raw)
    assert reason in caught.value.reason


def test_reason_never_echoes_values() -> None:
    document = json.loads(GOLDEN[0].read_bytes())
    document["time"] = "secret@example.com"
    with pytest.raises(DecodeError) as caught:
        decode(json.dumps(document).encode())
    assert "secret" not in caught.value.reason


def test_upcast_applies_the_chain_in_order() -> None:
    table = {
        ("x.happened", 1): lambda r: {**r, "schema_version": 2, "data": {"v": r["data"]["old"]}},
        ("x.happened", 2): lambda r: {**r, "schema_version": 3, "data": {"value": r["data"]["v"]}},
    }
    raw = {"type": "x.happened", "schema_version": 1, "data": {"old": 5}}
    assert upcast(raw, {"x.happened": 3}, table) == {
        "type": "x.happened",
        "schema_version": 3,
        "data": {"value": 5},
    }


@pytest.mark.parametrize(
    "location",
    [
        {"first_name": "Injected"},  # not a location field: it would land in the profile
        {"latitude": "north"},
        {"latitude": 91.0},
        {"country": 7},
    ],
)
def test_a_location_holds_only_typed_location_fields_R21(location: dict[str, object]) -> None:
    """A record on the canonical topic that did not come through the intake (which fills the
    location from the IP) cannot carry anything else into a profile's fields."""
    document = json.loads((Path(__file__).parent / "golden" / "pixel.hit.v1.json").read_bytes())
    document["data"]["location"] = location
    with pytest.raises(DecodeError) as caught:
        decode(json.dumps(document).encode())
    assert "data.location" in caught.value.reason
