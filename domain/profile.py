"""The profile fold: current profile state from its events, deterministically."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from contracts import (
    Event,
    ProfileDeleted,
    ProfileImported,
    ProfileStatusChanged,
    ProfileUpdated,
)
from domain.fields import UTM_FIELDS
from domain.updates import incremented

_EMPTY: Mapping[str, Any] = MappingProxyType({})
# actions whose IP gives the latest-action location (R21: opens, clicks, pixel hits; the
# confirmation and unsubscribe links are clicks too)
LOCATING_TYPES = frozenset(
    {
        "campaign.opened",
        "campaign.clicked",
        "campaign.confirmation_clicked",
        "campaign.unsubscribe_clicked",
        "pixel.hit",
    }
)
# activity that may change the profile: a location (R21), UTM (R22), a confirmed consent (R9)
ACTIVITY_TYPES = LOCATING_TYPES | {"form.submitted"}


def thaw(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A dict copy of a state's read-only mapping.

    `dict()` of a MappingProxyType goes key by key through the mapping protocol; its own
    `copy()` copies the dict behind it in C: 0.13 against 0.90 µs for eight fields, paid for
    each profile a batch folds and again for each it writes.
    """
    if type(mapping) is MappingProxyType:
        return mapping.copy()
    return dict(mapping)


@dataclass(frozen=True)
class ProfileState:
    """A profile as its events made it."""

    profile_id: UUID
    database_id: str
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    phones: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    custom: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    status: str = "subscribed"
    import_mode: str | None = None
    version: int = 0
    located: frozenset[str] = frozenset()  # fields whose value came from an IP, not a person
    acted_at: datetime | None = None  # when the action that gave the latest location happened

    @classmethod
    def of(cls, values: dict[str, Any]) -> ProfileState:
        """A state from a dict of every one of its fields, exactly those.

        Skips the frozen `__init__`, which sets each field through `object.__setattr__`: a
        batch builds a state for every profile it reads and every profile it changes, and the
        `__init__` cost about twice this (1.6 against 0.7 µs).
        """
        made = object.__new__(cls)
        made.__dict__.update(values)
        return made


def fold(state: ProfileState | None, event: Event) -> ProfileState | None:
    """Apply one event; events this fold does not know leave the state as it is."""
    return fold_all(state, (event,))


def fold_all(state: ProfileState | None, events: Iterable[Event]) -> ProfileState | None:
    """Apply events in order, all to one profile; None once it is deleted (R26).

    A private mutable draft takes the events and is frozen once at the end: a batch touching a
    profile ten times costs one state, not ten copies (the projector's hot path).
    """
    draft = _Draft.of(state)
    for event in events:
        if draft.deleted:
            break  # a deleted profile is gone for good (R4: its id is never reused)
        if type(event) is ProfileUpdated:  # most events: a failed isinstance on a pydantic
            draft.updated(event)  # model goes through ABCMeta, 0.15 µs an event more
        elif isinstance(event, ProfileImported):
            draft.imported(event)
        elif isinstance(event, ProfileUpdated):
            draft.updated(event)
        elif isinstance(event, ProfileStatusChanged):
            draft.status_changed(event)
        elif isinstance(event, ProfileDeleted):
            draft.deleted = True
        elif event.type in LOCATING_TYPES:
            acted = draft.acted(event)  # both, for a confirmation click: counted once
            if (event.type == "campaign.confirmation_clicked" and draft.confirmed()) or acted:
                draft.touch(event)
        elif event.type == "form.submitted":
            draft.form(event)
    return draft.freeze(state)


class _Draft:
    """Working copy of a profile while a fold runs; never escapes this module."""

    __slots__ = (
        "acted_at",
        "base",
        "changed",
        "custom",
        "deleted",
        "email",
        "fields",
        "last_time",
        "located",
        "mode",
        "phones",
        "status",
        "version",
    )

    def __init__(self, base: ProfileState | None) -> None:
        self.base = base
        self.changed = False
        self.deleted = False
        self.status = base.status if base else "subscribed"
        self.email = base.email if base else None
        self.phones: dict[str, None] = dict.fromkeys(base.phones) if base else {}
        self.fields: dict[str, Any] = thaw(base.fields) if base else {}
        self.located: set[str] = set(base.located) if base else set()
        self.custom: dict[str, Any] = thaw(base.custom) if base else {}
        self.mode = base.import_mode if base else None
        self.last_time = base.updated_at if base else None
        self.version = base.version if base else 0
        self.acted_at = base.acted_at if base else None

    @classmethod
    def of(cls, state: ProfileState | None) -> _Draft:
        return cls(state)

    def imported(self, event: ProfileImported) -> None:
        data = event.data
        if self.base is None:
            self.base = ProfileState(
                profile_id=event.subject,
                database_id=event.database_id,
                created_at=event.time,
                updated_at=event.time,
            )
            self.last_time = event.time
        if data.email is not None:
            self.email = data.email
        self.phones.update(dict.fromkeys(data.phones))
        _merge(self.fields, data.fields, ())
        self.located.difference_update(data.fields)
        self.locate(data.located)
        _merge(self.custom, data.custom, ())
        if data.status is not None:
            self.status = data.status
        self.mode = data.import_mode
        self.touch(event)

    def updated(self, event: ProfileUpdated) -> None:
        if self.base is None:
            return  # an update of a profile never imported has nothing to change
        # most changes set a field or two: each step that has nothing to do is skipped, which
        # halves this method's cost (a projector calls it for most events it folds)
        data = event.data
        if data.set or data.unset:
            _merge(self.fields, data.set, data.unset)
            if self.located:
                self.located.difference_update(data.set)
                self.located.difference_update(data.unset)
        if data.custom_set or data.custom_unset:
            _merge(self.custom, data.custom_set, data.custom_unset)
        for name, amount in data.increment.items():
            self.custom[name] = incremented(self.custom.get(name), amount)
        for name, tags in data.tags_add.items():
            self.custom[name] = list(dict.fromkeys([*_tags(self.custom.get(name)), *tags]))
        for name, tags in data.tags_remove.items():
            self.custom[name] = [t for t in _tags(self.custom.get(name)) if t not in tags]
        if data.email is not None:
            self.email = data.email
        elif data.email_removed:
            self.email = None
        if data.phones_add:
            self.phones.update(dict.fromkeys(data.phones_add))
        for phone in data.phones_remove:
            self.phones.pop(phone, None)
        self.touch(event)

    def locate(self, located: Mapping[str, Any]) -> None:
        """Fill location fields from an IP, but never over a value a person set (R21)."""
        for name, value in located.items():
            if name not in self.fields or name in self.located:
                self.fields[name] = value
                self.located.add(name)

    def acted(self, event: Event) -> bool:
        """An open, click or pixel hit: the latest-action location (R21), unless set by hand;
        whether the event counts as a change (`touch` it then)."""
        location = getattr(event.data, "location", None)
        ip = getattr(event.data, "ip", None)
        if self.base is None or not (location or ip):
            return False
        # the latest action by when it happened, not by when it reached the log: an open
        # published late (a batch, a retry) does not move the location back
        if self.acted_at is None or event.time >= self.acted_at:
            self.locate({**(location or {}), **({"latest_ip": ip} if ip else {})})
            self.acted_at = event.time
        return True

    def form(self, event: Event) -> None:
        """UTM from a form, only when the form says "update UTM data in profile" (R22)."""
        data = event.data
        utm = getattr(data, "utm", {})
        if self.base is None or not getattr(data, "update_utm", False) or not utm:
            return
        chosen = {k: v for k, v in utm.items() if k in UTM_FIELDS}
        if chosen:
            _merge(self.fields, chosen, ())
            self.located.difference_update(chosen)
            self.touch(event)

    def confirmed(self) -> bool:
        """A confirmation-link click: a globally `unconfirmed` profile is `subscribed` (R7, R9's
        global side: "after confirmation, the status is changed to Subscribed"); any other
        status stays, so a click never overrides an unsubscription or a bounce. Whether it
        changed the status."""
        if self.base is None or self.status != "unconfirmed":
            return False
        self.status = "subscribed"
        return True

    def status_changed(self, event: ProfileStatusChanged) -> None:
        if self.base is None:
            return
        self.status = event.data.status
        self.touch(event)

    def touch(self, event: Event) -> None:
        assert self.last_time is not None
        self.last_time = max(self.last_time, event.time)
        self.version += 1
        self.changed = True

    def freeze(self, original: ProfileState | None) -> ProfileState | None:
        if self.deleted:
            return None
        if not self.changed or self.base is None or self.last_time is None:
            return original
        base = self.base  # built whole, not through `replace`: it costs a batch per profile
        return ProfileState.of(
            {
                "profile_id": base.profile_id,
                "database_id": base.database_id,
                "created_at": base.created_at,
                "updated_at": self.last_time,
                "email": self.email,
                "phones": tuple(self.phones),
                "fields": MappingProxyType(self.fields),
                "custom": MappingProxyType(self.custom),
                "status": self.status,
                "import_mode": self.mode,
                "version": self.version,
                "located": frozenset(self.located),
                "acted_at": self.acted_at,
            }
        )


def _merge(target: dict[str, Any], updates: Mapping[str, Any], removed: Iterable[str]) -> None:
    target.update(updates)
    for name in removed:
        target.pop(name, None)
    for name, value in updates.items():
        if value is None:
            del target[name]


def _tags(value: Any) -> list[str]:
    return [str(t) for t in value] if isinstance(value, list) else []
