"""Database structure (R1-R3): which custom fields a database has, and the rules for changing it.

A removed field's name is retired for good: values stored under it before the removal must never
reappear under a new field of the same name (our reading of R1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from contracts import DatabaseCreated, Event, FieldAdded, FieldRemoved
from domain.errors import ValidationError, Violation
from domain.fields import FieldDef

_NO_FIELDS: Mapping[str, FieldDef] = MappingProxyType({})


@dataclass(frozen=True)
class DatabaseState:
    """A database and its current custom-field structure."""

    database_id: str
    name: str
    created_at: datetime
    fields: Mapping[str, FieldDef] = field(default_factory=lambda: _NO_FIELDS)
    retired: Mapping[str, FieldDef] = field(default_factory=lambda: _NO_FIELDS)

    @property
    def unique_fields(self) -> tuple[str, ...]:
        """Custom fields that identify profiles (R6)."""
        return tuple(name for name, f in self.fields.items() if f.unique)


def check_new_field(state: DatabaseState, definition: FieldDef) -> None:
    """Raise ValidationError when `definition` cannot join the structure."""
    if definition.name in state.fields:
        raise ValidationError([Violation("name", "field_exists", definition.name)])
    if definition.name in state.retired:
        raise ValidationError([Violation("name", "field_name_retired", definition.name)])


def check_removal(state: DatabaseState, name: str) -> None:
    """Raise ValidationError when `name` is not a field of the database."""
    if name not in state.fields:
        raise ValidationError([Violation("name", "unknown_field", name)])


def fold_all(state: DatabaseState | None, events: Iterable[Event]) -> DatabaseState | None:
    """Apply one database's structure events in order; other events leave it unchanged."""
    for event in events:
        if isinstance(event, DatabaseCreated) and state is None:
            state = DatabaseState(event.database_id, event.data.name, event.time)
        elif isinstance(event, FieldAdded) and state is not None:
            d = event.data
            added = FieldDef(d.name, d.field_type, d.options, d.unique)
            state = replace(state, fields=MappingProxyType({**state.fields, d.name: added}))
        elif isinstance(event, FieldRemoved) and state is not None:
            name = event.data.name
            gone = state.fields.get(name)
            if gone is None:
                continue
            kept = {k: v for k, v in state.fields.items() if k != name}
            retired = {**state.retired, name: gone}
            state = replace(state, fields=MappingProxyType(kept), retired=MappingProxyType(retired))
    return state
