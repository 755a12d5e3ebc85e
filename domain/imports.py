"""An import item checked against its database (R2-R8): canonical values and identity keys.

`prepare` gathers every broken rule of an item into one ValidationError, so a client (or a file
import's error report) sees all of them at once, and nothing half-valid goes further.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeGuard, TypeVar

from pydantic import JsonValue

from contracts import GlobalStatus, ImportMode
from domain.database import DatabaseState
from domain.errors import ValidationError, Violation, collect
from domain.fields import (
    validate_custom,
    validate_custom_text,
    validate_standard,
    validate_standard_text,
)
from domain.identity import normalise_email, normalise_phone

STATUSES = (
    "subscribed",
    "unsubscribed",
    "complainer",
    "hard_bounced",
    "unconfirmed",
    "suspended",
    "invalid",
)
RefKind = Literal["profile_id", "md5_id", "xxh_id"]
T = TypeVar("T")


@dataclass(frozen=True)
class ImportItem:
    """One profile to import, as a client or a file row gave it."""

    email: str | None = None
    phones: tuple[str, ...] = ()
    fields: Mapping[str, JsonValue] = field(default_factory=dict)
    custom: Mapping[str, JsonValue] = field(default_factory=dict)
    status: str | None = None
    refs: tuple[tuple[RefKind, str], ...] = ()
    text: bool = False  # values are the raw text of a file cell (R3 parsing), not JSON
    locate: bool | None = None  # locate reg_ip (R21); None: the import's default
    mode: ImportMode | None = None  # None: the import's mode


@dataclass(frozen=True)
class PreparedImport:
    """A valid item: canonical values, and what identifies it (R6)."""

    email: str | None
    phones: tuple[str, ...]
    fields: dict[str, JsonValue]
    custom: dict[str, JsonValue]
    status: GlobalStatus | None
    keys: tuple[tuple[str, str], ...]
    ref: tuple[RefKind, str] | None
    locate: bool | None = None
    mode: ImportMode | None = None


def prepare(database: DatabaseState, item: ImportItem) -> PreparedImport:
    """Check an item against the database structure; raise ValidationError listing every error."""
    violations: list[Violation] = []
    email = collect(violations, lambda: _email(item.email), None)
    phones: tuple[str, ...] = collect(violations, lambda: _phones(item.phones), ())
    fields: dict[str, JsonValue] = collect(violations, lambda: _standard(item), {})
    custom: dict[str, JsonValue] = collect(violations, lambda: _custom(database, item), {})
    status = item.status if _is_status(item.status) else None
    if item.status is not None and status is None:
        violations.append(Violation("status", "status_unknown", item.status))
    if len(item.refs) > 1:
        violations.append(Violation("profile_id", "one_reference_only", [k for k, _ in item.refs]))
    if violations:
        raise ValidationError(violations)
    keys = [("email", email)] if email else []
    keys += [("phone", p) for p in phones]
    keys += [
        (f"field:{name}", _key_text(custom[name]))
        for name in database.unique_fields
        if custom.get(name) is not None
    ]
    return PreparedImport(
        email=email,
        phones=phones,
        fields=fields,
        custom=custom,
        status=status,
        keys=tuple(keys),
        ref=_ref(item.refs[0]) if item.refs else None,
        locate=item.locate,
        mode=item.mode,
    )


def _ref(ref: tuple[RefKind, str]) -> tuple[RefKind, str]:
    """MD5 and XXH ids are hex: any case names the same profile (as reads by them do, R5)."""
    kind, value = ref
    return (kind, value.strip().lower()) if kind in ("md5_id", "xxh_id") else ref


def _is_status(value: str | None) -> TypeGuard[GlobalStatus]:
    return value in STATUSES


def _email(raw: str | None) -> str | None:
    return normalise_email(raw) if raw is not None and raw.strip() else None


def _phones(raw: tuple[str, ...]) -> tuple[str, ...]:
    violations: list[Violation] = []
    phones: dict[str, None] = {}
    for text in raw:
        try:
            phones[normalise_phone(text)] = None
        except ValidationError as error:
            violations.extend(error.violations)
    if violations:
        raise ValidationError(violations)
    return tuple(phones)


def _standard(item: ImportItem) -> dict[str, JsonValue]:
    if item.text:
        return validate_standard_text({k: str(v) for k, v in item.fields.items()})
    return validate_standard(item.fields)


def _custom(database: DatabaseState, item: ImportItem) -> dict[str, JsonValue]:
    if item.text:
        return validate_custom_text(database.fields, {k: str(v) for k, v in item.custom.items()})
    return validate_custom(database.fields, item.custom)


def _key_text(value: JsonValue) -> str:
    return str(value)  # canonical already: parse/coerce normalised it
