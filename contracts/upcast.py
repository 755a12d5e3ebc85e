"""The one place where old event versions become current ones.

An upcaster is a pure function from the raw JSON of `(type, version)` to the raw JSON of
`(type, version + 1)`. Decoding applies the chain until the current version, so an analytics
consumer and a replay both see only current shapes. Rule: a change that an old reader could
misread (removed or renamed field, changed meaning) is a new `schema_version` plus an upcaster
here; adding an optional field is not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

RawEvent = dict[str, Any]
Upcaster = Callable[[RawEvent], RawEvent]

# (type, from_version) -> function producing from_version + 1. Empty until a type changes.
UPCASTERS: Mapping[tuple[str, int], Upcaster] = {}


def upcast(
    raw: RawEvent, current: Mapping[str, int], table: Mapping[tuple[str, int], Upcaster] = UPCASTERS
) -> RawEvent:
    """Apply the chain of upcasters to `raw` until it reaches the current version of its type."""
    event_type = raw.get("type")
    version = raw.get("schema_version")
    if not isinstance(event_type, str) or not isinstance(version, int):
        return raw
    target = current.get(event_type, version)
    while version < target:
        step = table.get((event_type, version))
        if step is None:
            return raw
        raw = step(raw)
        version = raw["schema_version"]
    return raw
