"""The history timeline (R18): which kind of entry each event makes, and what it shows.

Kinds: import, profile, status, subscription, eviction, campaign, unsub, pixel, promo, segment,
trigger, scenario, order, relation, form. Database and resource events make none.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import NamedTuple, get_origin
from uuid import UUID

from pydantic import BaseModel
from pydantic_core import to_json

from contracts import Event

KINDS = (
    "import",
    "profile",
    "status",
    "subscription",
    "eviction",
    "campaign",
    "unsub",
    "pixel",
    "promo",
    "segment",
    "trigger",
    "scenario",
    "order",
    "relation",
    "form",
)
_BY_FAMILY = {
    "campaign": "campaign",
    "pixel": "pixel",
    "promo_code": "promo",
    "segment": "segment",
    "trigger": "trigger",
    "scenario": "scenario",
    "order": "order",
    "relation": "relation",
    "form": "form",
}


# profile data lives in the profile; its timeline names the fields an import or change touched
_NAMES_ONLY = frozenset({"profile.imported", "profile.updated"})


class Entry(NamedTuple):
    """One line of a profile's timeline (a tuple: a batch makes thousands, and a frozen
    dataclass costs several times more to build)."""

    profile_id: UUID
    event_id: UUID
    at: datetime
    kind: str
    type: str
    summary: bytes  # a JSON object


def entry(event: Event) -> Entry | None:
    """The timeline line an event makes, or None."""
    kind = _kind(event.type)
    if kind is None:
        return None
    if event.type in _NAMES_ONLY:  # names of what changed, not a copy of the values
        summary = _names(event)
    else:
        # bytes of JSON straight from the model's serializer (documented on BaseModel): a
        # dict of the values, encoded again when the batch is written, cost 4.4-4.7 µs an
        # event, this 2.0-2.1 (a replay writes a line an event)
        data = event.data
        summary = type(data).__pydantic_serializer__.to_json(data, exclude_defaults=True)
    return Entry(event.subject, event.id, event.time, kind, event.type, summary)


def _names(event: Event) -> bytes:
    """The data without its defaults, each value map replaced by its sorted names.

    The maps are left out of the model's own JSON, not dumped and thrown away (a value costs
    about a microsecond to dump), and their names are spliced into that object.
    """
    data = event.data
    maps, leave_out = _maps(type(data))
    head: bytes = type(data).__pydantic_serializer__.to_json(
        data, exclude_defaults=True, exclude=leave_out
    )
    named = {k: sorted(names) for k in maps if (names := getattr(data, k))}
    if not named:
        return head
    tail = to_json(named)
    return tail if head == b"{}" else head[:-1] + b"," + tail[1:]


@cache
def _maps(model: type[BaseModel]) -> tuple[tuple[str, ...], set[str]]:
    """The fields of a data model that hold maps of values (looked up once per model; the set
    is the serializer's `exclude`, which it only reads)."""
    maps = tuple(k for k, f in model.model_fields.items() if get_origin(f.annotation) is dict)
    return maps, set(maps)


def _kind(event_type: str) -> str | None:
    if event_type == "profile.imported":
        return "import"
    if event_type == "profile.updated":
        return "profile"
    if event_type == "profile.status_changed":
        return "status"
    if event_type == "subscription.evicted":
        return "eviction"
    if event_type.startswith("subscription."):
        return "subscription"
    if event_type == "campaign.unsubscribe_clicked":
        return "unsub"
    return _BY_FAMILY.get(event_type.partition(".")[0])
