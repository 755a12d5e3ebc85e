"""File rows as import items (R3): which column means what, checked once per file.

A CSV header names identity columns (`email`, `phones`, `status`, `profile_id`, `md5_id`,
`xxh_id`), standard fields (R2) and custom fields of the database. Phones in one cell are
separated by `;`, `,` or `|`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from domain.database import DatabaseState
from domain.errors import ValidationError, Violation
from domain.fields import STANDARD_FIELDS
from domain.imports import ImportItem, RefKind

IDENTITY_COLUMNS = frozenset(
    {"email", "phones", "phone", "status", "profile_id", "md5_id", "xxh_id"}
)
_REFS: tuple[RefKind, ...] = ("profile_id", "md5_id", "xxh_id")
_PHONE_SEPARATORS = re.compile(r"[;,|]")
Role = Literal["identity", "standard", "custom"]


@dataclass(frozen=True)
class Columns:
    """What each column of a file holds."""

    names: tuple[str, ...]
    roles: tuple[Role, ...]


def columns(database: DatabaseState, header: Sequence[str]) -> Columns:
    """Read a header; ValidationError naming every unknown or repeated column."""
    names = tuple(h.strip() for h in header)
    violations = []
    roles: list[Role] = []
    for position, name in enumerate(names):
        if name in names[:position]:
            violations.append(Violation(f"column {position + 1}", "duplicate_column", name))
        if name in IDENTITY_COLUMNS:
            roles.append("identity")
        elif name in STANDARD_FIELDS:
            roles.append("standard")
        elif name in database.fields:
            roles.append("custom")
        else:
            violations.append(Violation(f"column {position + 1}", "unknown_column", name))
    if not names:
        violations.append(Violation("header", "empty_header", ""))
    if violations:
        raise ValidationError(violations)
    return Columns(names, tuple(roles))


def item(cols: Columns, cells: Sequence[str]) -> ImportItem:
    """One CSV row as an import item of raw text; ValidationError when its width is wrong."""
    if len(cells) != len(cols.names):
        raise ValidationError([Violation("row", "column_count", len(cells))])
    fields: dict[str, str] = {}
    custom: dict[str, str] = {}
    ident: dict[str, str] = {}
    for name, role, cell in zip(cols.names, cols.roles, cells, strict=True):
        if role == "standard":
            fields[name] = cell
        elif role == "custom":
            custom[name] = cell
        else:
            ident[name] = cell.strip()
    phones = " ; ".join(p for p in (ident.get("phones", ""), ident.get("phone", "")) if p)
    return ImportItem(
        email=ident.get("email") or None,
        phones=tuple(p.strip() for p in _PHONE_SEPARATORS.split(phones) if p.strip()),
        fields=fields,
        custom=custom,
        status=ident.get("status") or None,
        refs=tuple((k, ident[k]) for k in _REFS if ident.get(k)),
        text=True,
    )
