"""The history timeline (R18): which kind of entry each event makes, and what it shows.

Kinds: import, profile, status, subscription, eviction, campaign, unsub, pixel, promo, segment,
trigger, scenario, order, relation, form. Database and resource events make none.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, get_origin
from uuid import UUID

import orjson
from pydantic import BaseModel

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
    summary: str  # a JSON object's text (stored as json, see migration 0009)


def entry(event: Event) -> Entry | None:
    """The timeline line an event makes, or None."""
    kind = _kind(event.type)
    if kind is None:
        return None
    if event.type in _NAMES_ONLY:  # names of what changed, not a copy of the values
        summary = _names(event)
    else:
        # JSON straight from the model's serializer (documented on BaseModel): a
        # dict of the values, encoded again when the batch is written, cost 4.4-4.7 µs an
        # event, this 2.0-2.1 (a replay writes a line an event)
        data = event.data
        serializer = type(data).__pydantic_serializer__
        summary = serializer.to_json(data, exclude_defaults=True).decode()
    return Entry(event.subject, event.id, event.time, kind, event.type, summary)


def _names(event: Event) -> str:
    """The data without its defaults, each value map replaced by its sorted names.

    Read straight from the model's attributes against its defaults (looked up once per
    model) and encoded by orjson: the model's serializer with `exclude_defaults`, and the
    names spliced into its JSON, cost 3.2-4.0 µs a line against 1.7-2.5 for this (a
    projector makes a line for every profile event). Profile data holds only JSON values,
    strings, booleans and tuples of strings, so both write the same JSON object (a test
    compares them on every kind of profile event).
    """
    data = event.data
    defaults, maps = _plan(type(data))
    shown: dict[str, Any] = {}
    for name, value in data.__dict__.items():
        if value != defaults[name]:
            shown[name] = sorted(value) if name in maps else value
    return orjson.dumps(shown).decode()


@cache
def _plan(model: type[BaseModel]) -> tuple[dict[str, Any], frozenset[str]]:
    """Each field's default (a required field's is `PydanticUndefined`, equal to no value),
    and the fields that hold maps of values."""
    defaults = {
        name: f.get_default(call_default_factory=True) for name, f in model.model_fields.items()
    }
    maps = frozenset(k for k, f in model.model_fields.items() if get_origin(f.annotation) is dict)
    return defaults, maps


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
