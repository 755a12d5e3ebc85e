"""The profile fold: current profile state from its events, deterministically."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from contracts import Event, ProfileImported, ProfileUpdated

_EMPTY: Mapping[str, Any] = MappingProxyType({})


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


def fold(state: ProfileState | None, event: Event) -> ProfileState | None:
    """Apply one event; unknown-to-this-fold events leave the state as it is."""
    if isinstance(event, ProfileImported):
        return _imported(state, event)
    if isinstance(event, ProfileUpdated):
        return _updated(state, event)
    return state


def fold_all(state: ProfileState | None, events: Iterable[Event]) -> ProfileState | None:
    """Apply events in order."""
    for event in events:
        state = fold(state, event)
    return state


def _imported(state: ProfileState | None, event: ProfileImported) -> ProfileState:
    data = event.data
    if state is None:
        state = ProfileState(
            profile_id=event.subject,
            database_id=event.database_id,
            created_at=event.time,
            updated_at=event.time,
        )
    return replace(
        state,
        email=data.email if data.email is not None else state.email,
        phones=_merge_phones(state.phones, data.phones),
        fields=_merge(state.fields, data.fields, ()),
        custom=_merge(state.custom, data.custom, ()),
        import_mode=data.import_mode,
        updated_at=max(state.updated_at, event.time),
        version=state.version + 1,
    )


def _updated(state: ProfileState | None, event: ProfileUpdated) -> ProfileState | None:
    if state is None:
        return None  # an update of a profile never imported has nothing to change
    data = event.data
    return replace(
        state,
        fields=_merge(state.fields, data.set, data.unset),
        custom=_merge(state.custom, data.custom_set, data.custom_unset),
        updated_at=max(state.updated_at, event.time),
        version=state.version + 1,
    )


def _merge(
    current: Mapping[str, Any], updates: Mapping[str, Any], removed: Iterable[str]
) -> Mapping[str, Any]:
    merged = {**current, **updates}
    for name in [*removed, *(k for k, v in updates.items() if v is None)]:
        merged.pop(name, None)
    return MappingProxyType(merged)


def _merge_phones(current: tuple[str, ...], added: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*current, *added)))
