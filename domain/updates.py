"""A functional update of one profile checked against its database (R3, R6).

Set or unset standard and custom fields, add to Number/Float fields, add or remove tags, change
the email and phones. Every broken rule is reported at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import JsonValue

from domain.database import DatabaseState
from domain.errors import ValidationError, Violation, collect
from domain.fields import validate_custom, validate_standard
from domain.identity import normalise_email, normalise_phone

T = TypeVar("T")


@dataclass(frozen=True)
class UpdateItem:
    """The update as a client sent it; with `email_given`, a `None` email removes it."""

    fields: Mapping[str, JsonValue] = field(default_factory=dict)
    custom: Mapping[str, JsonValue] = field(default_factory=dict)
    increment: Mapping[str, int | float] = field(default_factory=dict)
    tags_add: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tags_remove: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    email: str | None = None
    email_given: bool = False
    phones_add: tuple[str, ...] = ()
    phones_remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedUpdate:
    """A valid update in canonical form, with the identity keys it claims and releases."""

    set: dict[str, JsonValue]
    unset: tuple[str, ...]
    custom_set: dict[str, JsonValue]
    custom_unset: tuple[str, ...]
    increment: dict[str, int | float]
    tags_add: dict[str, tuple[str, ...]]
    tags_remove: dict[str, tuple[str, ...]]
    email: str | None
    email_removed: bool
    phones_add: tuple[str, ...]
    phones_remove: tuple[str, ...]
    claims: tuple[tuple[str, str], ...]


def prepare_update(database: DatabaseState, item: UpdateItem) -> PreparedUpdate:
    """Check an update; raise ValidationError listing every error."""
    violations: list[Violation] = []
    nothing: dict[str, JsonValue] = {}
    fields = collect(violations, lambda: validate_standard(item.fields), nothing)
    custom = collect(violations, lambda: validate_custom(database.fields, item.custom), nothing)
    violations += _typed(database, item.increment, ("number", "float"), "increment")
    violations += _typed(database, item.tags_add, ("tags",), "tags_add")
    violations += _typed(database, item.tags_remove, ("tags",), "tags_remove")
    for name, amount in item.increment.items():
        kind = database.fields[name].type if name in database.fields else None
        if kind == "number" and not isinstance(amount, int):
            violations.append(Violation(f"increment.{name}", "number_format", amount))
    raw_email = item.email
    email = collect(violations, lambda: normalise_email(raw_email), None) if raw_email else None
    phones_add = _phones(violations, item.phones_add, "phones_add")
    phones_remove = _phones(violations, item.phones_remove, "phones_remove")
    if violations:
        raise ValidationError(violations)
    claims = [("email", email)] if email else []
    claims += [("phone", p) for p in phones_add]
    claims += [
        (f"field:{n}", str(custom[n])) for n in database.unique_fields if custom.get(n) is not None
    ]
    return PreparedUpdate(
        set={k: v for k, v in fields.items() if v is not None},
        unset=tuple(k for k, v in fields.items() if v is None),
        custom_set={k: v for k, v in custom.items() if v is not None},
        custom_unset=tuple(k for k, v in custom.items() if v is None),
        increment=dict(item.increment),
        tags_add={k: tuple(dict.fromkeys(t.strip() for t in v)) for k, v in item.tags_add.items()},
        tags_remove={k: tuple(t.strip() for t in v) for k, v in item.tags_remove.items()},
        email=email,
        email_removed=item.email_given and item.email is None,
        phones_add=phones_add,
        phones_remove=phones_remove,
        claims=tuple(claims),
    )


def _typed(
    database: DatabaseState, values: Mapping[str, object], types: tuple[str, ...], rule: str
) -> list[Violation]:
    wrong = []
    for name in values:
        definition = database.fields.get(name)
        if definition is None:
            wrong.append(Violation(f"{rule}.{name}", "unknown_field", name))
        elif definition.type not in types:
            wrong.append(Violation(f"{rule}.{name}", f"{rule}_needs_{'_or_'.join(types)}", name))
    return wrong


def _phones(violations: list[Violation], raw: tuple[str, ...], name: str) -> tuple[str, ...]:
    phones: dict[str, None] = {}
    for text in raw:
        try:
            phones[normalise_phone(text)] = None
        except ValidationError:
            violations.append(Violation(name, "phone_e164", text))
    return tuple(phones)
