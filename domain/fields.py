"""Field catalogue and value parsing (R1-R3, R21, R22).

A database's custom fields (`FieldDef`, made by `define_field`) and the standard fields of the
reference's tabs (`STANDARD_FIELDS`), and how a value becomes the canonical JSON stored in events:
`parse_text` for the text a file import gives, `coerce` for the JSON an API client sends. A bad
value is a `ValidationError` naming field, rule and value; the `validate_*` functions collect all.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Literal, TypeGuard, TypeVar, get_args

from pydantic import JsonValue

from domain.errors import ValidationError, Violation

FieldType = Literal["number", "float", "line", "date", "boolean", "enum", "ip", "tags"]
FIELD_TYPES: tuple[FieldType, ...] = get_args(FieldType)
Group = Literal["main", "personal", "contact", "reg", "tracked", "additional"]


@dataclass(frozen=True)
class FieldDef:
    """A custom field of a database; `unique` fields can identify profiles (number, line, ip)."""

    name: str
    type: FieldType
    options: tuple[str, ...] = ()
    unique: bool = False


@dataclass(frozen=True)
class StandardField:
    """A field every database has, shown in one of the reference's tabs (R2)."""

    name: str
    group: Group
    type: FieldType
    options: tuple[str, ...] = ()


def _catalogue(*fields: StandardField) -> Mapping[str, StandardField]:
    return MappingProxyType({f.name: f for f in fields})


def _lines(group: Group, *names: str) -> tuple[StandardField, ...]:
    return tuple(StandardField(name, group, "line") for name in names)


UTM_FIELDS = frozenset({"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"})
LOCATION_FIELDS = frozenset(
    {"country", "region", "city", "zip", "timezone", "latitude", "longitude"}
)
REG_LOCATION_FIELDS = frozenset({"reg_country", "reg_city"})

STANDARD_FIELDS: Mapping[str, StandardField] = _catalogue(
    *_lines("personal", "first_name", "last_name", "middle_name"),
    StandardField("gender", "personal", "enum", ("male", "female", "other")),
    StandardField("birthday", "personal", "date"),
    *_lines("personal", "language"),
    StandardField("reg_date", "reg", "date"),
    StandardField("reg_ip", "reg", "ip"),
    *_lines("reg", "reg_country", "reg_city"),
    StandardField("optin_ip", "reg", "ip"),
    StandardField("optin_date", "reg", "date"),
    *_lines("reg", "optin_source", *sorted(UTM_FIELDS)),
    StandardField("latest_ip", "tracked", "ip"),
    *_lines("tracked", "country", "region", "city", "zip", "timezone"),
    StandardField("latitude", "tracked", "float"),
    StandardField("longitude", "tracked", "float"),
)

# Custom field names may not shadow a standard field or an identity (R6) of the profile.
RESERVED_NAMES = frozenset(STANDARD_FIELDS) | {"email", "phones", "profile_id"}

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_UNIQUE_TYPES = frozenset({"number", "line", "ip"})
_TAG_SEPARATORS = re.compile(r"[,|;]")
# PostgreSQL's jsonb cannot hold U+0000, so no stored text may contain it.
_NOT_IN_TAG = re.compile(r"[,|;\x00]")


def is_tag(text: str) -> bool:
    """Whether `text` can be one tag: it holds none of the separators `,` `|` `;` (R3)."""
    return not _NOT_IN_TAG.search(text)


# --- defining custom fields -------------------------------------------------------------------


def define_field(
    name: str,
    type: str,
    options: str | Sequence[str] | None = None,
    unique: bool = False,
) -> FieldDef:
    """A validated custom field (R1, R3); enum options may be one comma-separated line."""
    violations = _name_violations(name)
    parsed = _parse_options(options, violations)
    if not _is_field_type(type):
        raise ValidationError([*violations, Violation("type", "unknown_type", type)])
    violations += _type_violations(type, parsed, options, unique)
    if violations:
        raise ValidationError(violations)
    return FieldDef(name, type, parsed, unique)


def _name_violations(name: str) -> list[Violation]:
    if not _NAME.fullmatch(name):
        return [Violation("name", "field_name_syntax", name)]
    if name in RESERVED_NAMES:
        return [Violation("name", "reserved_name", name)]
    return []


def _is_field_type(type: str) -> TypeGuard[FieldType]:
    return type in FIELD_TYPES


def _parse_options(
    options: str | Sequence[str] | None, violations: list[Violation]
) -> tuple[str, ...]:
    """Options trimmed, empties dropped, first kept; an option in a list may hold no comma."""
    if options is None:
        return ()
    items = options.split(",") if isinstance(options, str) else list(options)
    violations += [Violation("options", "option_syntax", o) for o in items if "," in o]
    return _unique_trimmed(items)


def _type_violations(
    type: FieldType, parsed: tuple[str, ...], options: object, unique: bool
) -> list[Violation]:
    violations = []
    if type == "enum" and not parsed:
        violations.append(Violation("options", "enum_needs_options", options))
    if type != "enum" and parsed:
        violations.append(Violation("options", "options_only_for_enum", options))
    if unique and type not in _UNIQUE_TYPES:
        violations.append(Violation("unique", "unique_not_supported", unique))
    return violations


def _unique_trimmed(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for s in (i.strip() for i in items) if s))


# --- parsing text (file import) ---------------------------------------------------------------

_INT64 = range(-(2**63), 2**63)
INT64_MIN, INT64_MAX = _INT64[0], _INT64[-1]
_NUMBER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_BOOLEANS = MappingProxyType(
    {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
)


def _parse_number(text: str, _field: FieldDef) -> int:
    if not _NUMBER.fullmatch(text := text.strip()) or (number := int(text)) not in _INT64:
        raise ValueError(text)
    return number


def _parse_float(text: str, _field: FieldDef) -> float:
    if not _FLOAT.fullmatch(text := text.strip()) or not math.isfinite(number := float(text)):
        raise ValueError(text)
    return number


def _parse_line(text: str, _field: FieldDef) -> str:
    if "\x00" in text:
        raise ValueError(text)
    return text


def _parse_date(text: str, _field: FieldDef) -> str:
    """RFC 3339 with time and offset, to UTC with milliseconds (finer digits are truncated)."""
    if not (match := _DATE.fullmatch(text.strip())):
        raise ValueError(text)
    year, month, day, hour, minute, second = map(int, match.group(1, 2, 3, 4, 5, 6))
    micros = int(match[7].ljust(6, "0")[:6]) if match[7] else 0
    zone = _OFFSETS.get(match[8]) or _offset(match[8])
    local = datetime(year, month, day, hour, minute, second, micros, tzinfo=zone)
    if zone is not UTC:
        local = local.astimezone(UTC)
    return local.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def _offset(text: str) -> timezone:
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(text)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


# the offsets nearly every date of a file carries, made once
_OFFSETS: Mapping[str, timezone] = MappingProxyType(
    {"Z": UTC, "z": UTC, "+00:00": UTC, "-00:00": UTC}
)


def _parse_boolean(text: str, _field: FieldDef) -> bool:
    if (word := text.strip().lower()) not in _BOOLEANS:
        raise ValueError(text)
    return _BOOLEANS[word]


def _parse_enum(text: str, field: FieldDef) -> str:
    if (option := text.strip()) not in field.options:
        raise ValueError(text)
    return option


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _parse_ip(text: str, _field: FieldDef) -> str:
    # the regex is the canonical dotted quad (no leading zeros), several times faster than
    # ipaddress on the file-import hot path; ipaddress still decides the rare odd case
    if _IPV4.fullmatch(text := text.strip()):
        return text
    return str(ipaddress.IPv4Address(text))


def _parse_tags(text: str, _field: FieldDef) -> list[JsonValue] | None:
    """Tags of a cell; one holding only separators has no value, like a blank one."""
    if "\x00" in text:
        raise ValueError(text)
    return list(_unique_trimmed(_TAG_SEPARATORS.split(text))) or None


_PARSERS: Mapping[FieldType, Callable[[str, FieldDef], JsonValue]] = MappingProxyType(
    {
        "number": _parse_number,
        "float": _parse_float,
        "line": _parse_line,
        "date": _parse_date,
        "boolean": _parse_boolean,
        "enum": _parse_enum,
        "ip": _parse_ip,
        "tags": _parse_tags,
    }
)
_RULES: Mapping[FieldType, str] = MappingProxyType(
    {t: f"{t}_format" for t in FIELD_TYPES} | {"enum": "enum_option"}
)


def parse_text(field: FieldDef, text: str) -> JsonValue:
    """The canonical value of a file-import cell (R3); a cell without a value gives None.

    A bad value raises one violation: the field's name, `<type>_format` (`enum_option` for an
    enum) and the text as given.
    """
    if not text.strip():
        return None
    try:
        return _PARSERS[field.type](text, field)
    except (ValueError, OverflowError):
        raise ValidationError([Violation(field.name, _RULES[field.type], text)]) from None


# --- coercing JSON (API) ----------------------------------------------------------------------


def _coerce_number(value: JsonValue) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in _INT64:
        raise ValueError(value)
    return value


def _coerce_float(value: JsonValue) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(value)
    if not math.isfinite(number := float(value)):
        raise ValueError(value)
    return number


def _coerce_boolean(value: JsonValue) -> bool:
    if not isinstance(value, bool):
        raise ValueError(value)
    return value


def _coerce_tags(value: JsonValue) -> list[JsonValue]:
    if not isinstance(value, list):
        raise ValueError(value)
    tags = [t for t in value if isinstance(t, str) and not _NOT_IN_TAG.search(t)]
    if len(tags) != len(value):
        raise ValueError(value)
    return list(_unique_trimmed(tags))


def _reject(value: JsonValue) -> JsonValue:
    raise ValueError(value)


_COERCERS: Mapping[FieldType, Callable[[JsonValue], JsonValue]] = MappingProxyType(
    {
        "number": _coerce_number,
        "float": _coerce_float,
        "boolean": _coerce_boolean,
        "tags": _coerce_tags,
    }
)


def coerce(field: FieldDef, value: JsonValue) -> JsonValue:
    """The canonical value of an API client's JSON (R3); None stays None (unset).

    A string always goes through `parse_text`. Otherwise: number takes an int (never a bool or a
    float), float an int or a finite float, boolean a bool, tags a list of strings; line, date,
    enum and ip take strings only, so a JSON number is no line (its text form would be a guess).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return parse_text(field, value)
    try:
        return _COERCERS.get(field.type, _reject)(value)
    except (ValueError, OverflowError):
        raise ValidationError([Violation(field.name, _RULES[field.type], value)]) from None


# --- validating a profile's values ------------------------------------------------------------

_V = TypeVar("_V")
_Convert = Callable[[FieldDef, _V], JsonValue]


def validate_custom(
    defs: Mapping[str, FieldDef], values: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """Canonical custom values from an API client; None values stay (they unset the field)."""
    return _collect("custom", defs, values, coerce)


def validate_custom_text(
    defs: Mapping[str, FieldDef], values: Mapping[str, str]
) -> dict[str, JsonValue]:
    """Canonical custom values from a file import; blank cells are left out, not unset."""
    good = _all_good_text(defs, values)
    return good if good is not None else _present(_collect("custom", defs, values, parse_text))


_STANDARD_DEFS: Mapping[str, FieldDef] = MappingProxyType(
    {name: FieldDef(name, f.type, f.options) for name, f in STANDARD_FIELDS.items()}
)
_RANGES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0)}
)


def validate_standard(values: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """Canonical standard values from an API client (R2); None values stay (they unset)."""
    return _collect("fields", _STANDARD_DEFS, values, _in_range(coerce))


def validate_standard_text(values: Mapping[str, str]) -> dict[str, JsonValue]:
    """Canonical standard values from a file import (R2); blank cells are left out."""
    good = _all_good_text(_STANDARD_DEFS, values)
    if good is not None and _in_ranges(good):
        return good
    return _present(_collect("fields", _STANDARD_DEFS, values, _in_range(parse_text)))


def _in_ranges(values: Mapping[str, JsonValue]) -> bool:
    for name, (low, high) in _RANGES.items():
        value = values.get(name)
        if isinstance(value, float) and not low <= value <= high:
            return False
    return True


def _all_good_text(
    defs: Mapping[str, FieldDef], values: Mapping[str, str]
) -> dict[str, JsonValue] | None:
    """The canonical values of a row's cells when every one is known and good, else None.

    The path of nearly every row of a file import, without the per-cell wrapping that gathers
    violations: a row with any problem is checked again by `_collect`, which names them all.
    """
    result: dict[str, JsonValue] = {}
    try:
        for name, text in values.items():
            field = defs[name]  # an unknown name is an error even when its cell is blank
            if text.strip() and (value := _PARSERS[field.type](text, field)) is not None:
                result[name] = value
    except (KeyError, ValueError, OverflowError):
        return None
    return result


def _present(values: dict[str, JsonValue]) -> dict[str, JsonValue]:
    return {name: value for name, value in values.items() if value is not None}


def _in_range(convert: _Convert[_V]) -> _Convert[_V]:
    def checked(field: FieldDef, value: _V) -> JsonValue:
        result = convert(field, value)
        low, high = _RANGES.get(field.name, (-math.inf, math.inf))
        if isinstance(result, float) and not low <= result <= high:
            raise ValidationError([Violation(field.name, "range", value)])
        return result

    return checked


def _collect(
    prefix: str, defs: Mapping[str, FieldDef], values: Mapping[str, _V], convert: _Convert[_V]
) -> dict[str, JsonValue]:
    """Convert every value, gathering all violations into one error."""
    result: dict[str, JsonValue] = {}
    violations: list[Violation] = []
    for name, value in values.items():
        if (field := defs.get(name)) is None:
            violations.append(Violation(f"{prefix}.{name}", "unknown_field", name))
            continue
        try:
            result[name] = convert(field, value)
        except ValidationError as error:
            violations += [
                Violation(f"{prefix}.{v.field}", v.rule, v.value) for v in error.violations
            ]
    if violations:
        raise ValidationError(violations)
    return result


# --- reading --------------------------------------------------------------------------------


def tabs(
    fields: Mapping[str, JsonValue], custom: Mapping[str, JsonValue]
) -> dict[str, dict[str, JsonValue]]:
    """A profile's values by tab (R2); unknown standard names go to main, contact to the caller."""
    grouped: dict[str, dict[str, JsonValue]] = {
        t: {} for t in ("main", "personal", "reg", "tracked")
    }
    for name, value in fields.items():
        standard = STANDARD_FIELDS.get(name)
        grouped[standard.group if standard else "main"][name] = value
    grouped["additional"] = dict(custom)
    return grouped
