"""Resources (R9, R10, R13, R16, R17): channels, categories and options of subscriptions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from domain.errors import ValidationError, Violation
from domain.fields import FieldDef, define_field
from domain.subscriptions import STANDARD_CHANNELS, check_categories, check_channel_name

OptIn = Literal["single", "double"]
_NO_FIELDS: Mapping[str, FieldDef] = MappingProxyType({})


@dataclass(frozen=True)
class Resource:
    """A resource's configuration."""

    resource_id: str
    database_id: str
    name: str
    channels: tuple[str, ...]
    categories: tuple[str, ...] = ()
    custom_fields: Mapping[str, FieldDef] = field(default_factory=lambda: _NO_FIELDS)
    raise_priority: bool = False
    opt_in: OptIn = "single"


@dataclass(frozen=True)
class FieldSpec:
    """A custom channel field as a client describes it."""

    name: str
    type: str
    options: str | Sequence[str] | None = None


def define_resource(
    resource_id: str,
    database_id: str,
    name: str,
    channels: Sequence[str],
    categories: Sequence[str] = (),
    custom_fields: Sequence[FieldSpec] = (),
    raise_priority: bool = False,
    opt_in: OptIn = "single",
) -> Resource:
    """A checked resource; ValidationError listing every broken rule."""
    violations: list[Violation] = []
    kept: dict[str, None] = {}
    for position, channel in enumerate(channels):
        if channel not in STANDARD_CHANNELS:
            try:
                check_channel_name(channel)
            except ValidationError:
                violations.append(Violation(f"channels.{position}", "channel_name_syntax", channel))
                continue
        kept[channel] = None
    cats: tuple[str, ...] = ()
    try:
        cats = check_categories(categories)
    except ValidationError as error:
        violations += error.violations
    defs: dict[str, FieldDef] = {}
    for spec in custom_fields:
        try:
            defs[spec.name] = define_field(spec.name, spec.type, spec.options)
        except ValidationError as error:
            violations += [
                Violation(f"custom_fields.{spec.name}.{v.field}", v.rule, v.value)
                for v in error.violations
            ]
    if violations:
        raise ValidationError(violations)
    return Resource(
        resource_id=resource_id,
        database_id=database_id,
        name=name,
        channels=tuple(kept),
        categories=cats,
        custom_fields=MappingProxyType(defs),
        raise_priority=raise_priority,
        opt_in=opt_in,
    )
