"""A profile's subscription list as its events made it, and the consent ledger they write.

The same fold serves the intake (its write model) and the read model, so both agree by
construction; decisions (priorities, evictions) are already in the events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple, cast
from uuid import UUID

from contracts import (
    Event,
    SubscriptionAdded,
    SubscriptionCategoriesChanged,
    SubscriptionDeleted,
    SubscriptionEvicted,
    SubscriptionFieldsChanged,
    SubscriptionPriorityChanged,
    SubscriptionStatusChanged,
)
from domain.subscriptions import Subscription

SUBSCRIPTION_EVENTS = (
    SubscriptionAdded,
    SubscriptionEvicted,
    SubscriptionStatusChanged,
    SubscriptionPriorityChanged,
    SubscriptionCategoriesChanged,
    SubscriptionFieldsChanged,
    SubscriptionDeleted,
)
# isinstance on pydantic models goes through ABCMeta (slow in a replay's inner loops): the
# projections filter on the `type` string instead
SUBSCRIPTION_TYPES = frozenset(c.model_fields["type"].default for c in SUBSCRIPTION_EVENTS)


class LedgerEntry(NamedTuple):
    """One consent-relevant change of one subscription (a tuple: a replay makes one per event,
    and a frozen dataclass's `__init__` costs several times a tuple's)."""

    sub_id: UUID
    at: datetime
    change: str  # added, status, categories, evicted, deleted
    status: str | None = None
    categories: Mapping[str, bool] | None = None
    how: str | None = None
    ip: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Folded:
    """The list after the events, which subscriptions changed or left, and the ledger lines."""

    subscriptions: tuple[Subscription, ...]
    changed: frozenset[UUID]
    removed: frozenset[UUID]
    ledger: tuple[LedgerEntry, ...]
    updated_at: Mapping[UUID, datetime]


def fold(subs: Sequence[Subscription], events: Iterable[Event]) -> Folded:
    """Apply one profile's subscription events in order.

    Touched subscriptions are worked on as plain dicts and frozen once at the end: an add with
    R13 on moves up to 19 others, and a replay of a busy profile would otherwise copy the same
    subscriptions over and over (the replay's hot path).
    """
    kept: dict[int, Subscription] = {s.sub_id.int: s for s in subs}
    work = _Work(kept)
    for event in events:
        handle = _HANDLERS.get(event.type)
        if handle is not None:
            handle(work, event)
    drafts, gone, ids = work.drafts, work.gone, work.ids
    order = list(kept) + [i for i in drafts if i not in kept]
    final = tuple(
        Subscription.of(drafts[i]) if i in drafts else kept[i] for i in order if i not in gone
    )
    present = {i for i in order if i not in gone}
    return Folded(
        final,
        frozenset(ids[i] for i in drafts.keys() & present),
        frozenset(ids[i] for i in gone - present),
        tuple(work.ledger),
        MappingProxyType({ids[i]: when for i, when in work.touched.items()}),
    )


class _Work:
    """Mutable state of one fold; never escapes this module.

    Keyed by each sub_id's integer: a UUID hashes and compares in Python code (`uuid.py`), an
    int in C, and a busy profile's fold looks each subscription up many times (R13 moves up
    to 19 others per add). `ids` turns the integers back into the ids the fold returns.
    """

    __slots__ = ("drafts", "gone", "ids", "kept", "ledger", "touched")

    def __init__(self, kept: dict[int, Subscription]) -> None:
        self.kept = kept
        self.drafts: dict[int, dict[str, Any]] = {}
        self.gone: set[int] = set()
        self.ids: dict[int, UUID] = {key: s.sub_id for key, s in kept.items()}
        self.ledger: list[LedgerEntry] = []
        self.touched: dict[int, datetime] = {}

    def draft(self, sub_id: UUID, when: datetime) -> dict[str, Any] | None:
        key = sub_id.int
        if key in self.gone:
            return None
        found = self.drafts.get(key)
        if found is None:
            sub = self.kept.get(key)
            if sub is None:
                return None  # a change of a subscription no longer in the list changes nothing
            found = self.drafts[key] = dict(sub.__dict__)
        self.touched[key] = when
        return found


def _added(work: _Work, any_event: Event) -> None:
    event = cast(SubscriptionAdded, any_event)  # dispatched on its type name
    d = event.data
    for moved, priority in d.reprioritised.items():
        if (other := work.draft(moved, event.time)) is not None:
            other["priority"] = priority
    key = d.sub_id.int
    work.gone.discard(key)
    work.ids[key] = d.sub_id
    work.drafts[key] = {
        "sub_id": d.sub_id,
        "resource_id": d.resource_id,
        "channel": d.channel,
        "contact": d.contact,
        "status": d.status,
        "priority": d.priority,
        "created_at": event.time,
        "categories": dict(d.categories),
        "fields": dict(d.fields),
        "custom": dict(d.custom),
        "deleted": False,
    }
    work.touched[key] = event.time
    c = d.consent
    work.ledger.append(
        LedgerEntry(d.sub_id, event.time, "added", d.status, d.categories, c.how, c.ip, c.detail)
    )


def _evicted(work: _Work, any_event: Event) -> None:
    event = cast(SubscriptionEvicted, any_event)  # dispatched on its type name
    sub_id = event.data.sub_id
    key = sub_id.int
    if key in work.gone or (key not in work.kept and key not in work.drafts):
        return
    work.gone.add(key)
    work.drafts.pop(key, None)
    work.ledger.append(LedgerEntry(sub_id, event.time, "evicted", detail=event.data.scope))


def _status(work: _Work, any_event: Event) -> None:
    event = cast(SubscriptionStatusChanged, any_event)  # dispatched on its type name
    d, c = event.data, event.data.consent
    if (sub := work.draft(d.sub_id, event.time)) is not None:
        sub["status"] = d.status
        work.ledger.append(
            LedgerEntry(d.sub_id, event.time, "status", d.status, None, c.how, c.ip, c.detail)
        )


def _priority(work: _Work, any_event: Event) -> None:
    event = cast(SubscriptionPriorityChanged, any_event)  # dispatched on its type name
    if (sub := work.draft(event.data.sub_id, event.time)) is not None:
        sub["priority"] = event.data.priority


def _categories(work: _Work, any_event: Event) -> None:
    event = cast(SubscriptionCategoriesChanged, any_event)  # dispatched on its type name
    d, c = event.data, event.data.consent
    if (sub := work.draft(d.sub_id, event.time)) is not None:
        sub["categories"] = {**sub["categories"], **d.categories}
        work.ledger.append(
            LedgerEntry(
                d.sub_id, event.time, "categories", None, d.categories, c.how, c.ip, c.detail
            )
        )


def _fields(work: _Work, any_event: Event) -> None:
    event = cast(SubscriptionFieldsChanged, any_event)  # dispatched on its type name
    d = event.data
    if (sub := work.draft(d.sub_id, event.time)) is not None:
        sub["fields"] = _merged(sub["fields"], d.fields)
        sub["custom"] = _merged(sub["custom"], d.custom)


def _deleted(work: _Work, any_event: Event) -> None:
    event = cast(SubscriptionDeleted, any_event)  # dispatched on its type name
    if (sub := work.draft(event.data.sub_id, event.time)) is not None:
        sub["deleted"] = True
        work.ledger.append(LedgerEntry(event.data.sub_id, event.time, "deleted"))


_HANDLERS: Mapping[str, Callable[[_Work, Event], None]] = MappingProxyType(
    {
        "subscription.added": _added,
        "subscription.evicted": _evicted,
        "subscription.status_changed": _status,
        "subscription.priority_changed": _priority,
        "subscription.categories_changed": _categories,
        "subscription.fields_changed": _fields,
        "subscription.deleted": _deleted,
    }
)


def _merged(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = {**old, **new}
    return {k: v for k, v in out.items() if v is not None}
