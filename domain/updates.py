"""A functional update of one profile checked against its database (R3, R6).

Set or unset standard and custom fields, add to Number/Float fields, add or remove tags, change
the email and phones. Every broken rule is reported at once.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeGuard, TypeVar

from pydantic import JsonValue

from domain.database import DatabaseState
from domain.errors import ValidationError, Violation, collect
from domain.fields import INT64_MAX, INT64_MIN, is_tag, validate_custom, validate_standard
from domain.identity import normalise_email, normalise_phone

T = TypeVar("T")


@dataclass(frozen=True)
class UpdateItem:
    """The update as a client sent it; with `email_given`, a `None` email removes it."""

    fields: Mapping[str, JsonValue] = field(default_factory=dict)
    custom: Mapping[str, JsonValue] = field(default_factory=dict)
    increment: Mapping[str, JsonValue] = field(default_factory=dict)
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
    increment: dict[str, int | float] = {}
    for name, amount in item.increment.items():
        kind = database.fields[name].type if name in database.fields else None
        if kind not in ("number", "float"):
            continue  # `_typed` named it
        if _amount_fits(amount, kind):
            increment[name] = amount
        else:
            violations.append(Violation(f"increment.{name}", f"{kind}_format", amount))
    tags_add = _tags(violations, item.tags_add, "tags_add")
    tags_remove = _tags(violations, item.tags_remove, "tags_remove")
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
        increment=increment,
        tags_add=tags_add,
        tags_remove=tags_remove,
        email=email,
        email_removed=item.email_given and item.email is None,
        phones_add=phones_add,
        phones_remove=phones_remove,
        claims=tuple(claims),
    )


def _amount_fits(amount: object, kind: str) -> TypeGuard[int | float]:
    """An increment of a Number is a signed 64-bit integer, of a Float a finite number (R3);
    never a boolean, which JSON keeps apart from numbers."""
    if isinstance(amount, bool):
        return False
    if kind == "number":
        return isinstance(amount, int) and INT64_MIN <= amount <= INT64_MAX
    return isinstance(amount, int | float) and math.isfinite(amount)


def _tags(
    violations: list[Violation], given: Mapping[str, tuple[str, ...]], rule: str
) -> dict[str, tuple[str, ...]]:
    """Tags to add or remove as a Tags value holds them (R3): trimmed, empty ones dropped,
    first appearances kept; one holding a separator is an error, as in a custom value."""
    kept: dict[str, tuple[str, ...]] = {}
    for name, tags in given.items():
        violations += [Violation(f"{rule}.{name}", "tags_format", t) for t in tags if not is_tag(t)]
        kept[name] = tuple(dict.fromkeys(t for t in (t.strip() for t in tags) if t))
    return kept


def incremented(current: object, amount: int | float) -> int | float:
    """`current` (a Number or Float value, or nothing) plus `amount`, saturating at the type's
    bounds: a signed 64-bit integer stays one, a float stays finite (R3).

    The write API refuses an increment that would leave them given the value it can see
    (`increment_violations`); one racing with another increment can still get there when the
    log folds them, and then the value stops at the bound rather than becoming one no reader,
    JSON encoder or PostgreSQL column accepts.
    """
    total = _number_or_zero(current) + amount
    if isinstance(total, int):
        return min(max(total, INT64_MIN), INT64_MAX)
    return total if math.isfinite(total) else math.copysign(sys.float_info.max, total)


def _number_or_zero(value: object) -> int | float:
    """A Number or Float field's value, or 0 for none (or a value of another type)."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def increment_violations(
    increment: Mapping[str, int | float], custom: Mapping[str, object]
) -> list[Violation]:
    """The increments that would take a field out of its type's range from its `custom` value
    now, each as `<type>_range` with the amount (R3)."""
    wrong = []
    for name, amount in increment.items():
        total = _number_or_zero(custom.get(name)) + amount
        if isinstance(total, int) and not INT64_MIN <= total <= INT64_MAX:
            wrong.append(Violation(f"increment.{name}", "number_range", amount))
        elif isinstance(total, float) and not math.isfinite(total):
            wrong.append(Violation(f"increment.{name}", "float_range", amount))
    return wrong


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
