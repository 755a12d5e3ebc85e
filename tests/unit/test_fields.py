"""Field definitions, value parsing and the standard catalogue: R1-R3, R21, R22."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from domain.errors import ValidationError, Violation
from domain.fields import (
    FIELD_TYPES,
    LOCATION_FIELDS,
    REG_LOCATION_FIELDS,
    STANDARD_FIELDS,
    UTM_FIELDS,
    FieldDef,
    FieldType,
    coerce,
    define_field,
    parse_text,
    tabs,
    validate_custom,
    validate_custom_text,
    validate_standard,
    validate_standard_text,
)

NUMBER = FieldDef("n", "number")
FLOAT = FieldDef("f", "float")
LINE = FieldDef("l", "line")
DATE = FieldDef("d", "date")
BOOLEAN = FieldDef("b", "boolean")
ENUM = FieldDef("e", "enum", ("Gold", "Silver"))
IP = FieldDef("ip", "ip")
TAGS = FieldDef("t", "tags")
BY_TYPE: dict[str, FieldDef] = {
    f.type: f for f in (NUMBER, FLOAT, LINE, DATE, BOOLEAN, ENUM, IP, TAGS)
}
BY_TYPE_NAMES = [f.name for f in BY_TYPE.values()]
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def violations(error: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str, object]]:
    return [(v.field, v.rule, v.value) for v in error.value.violations]


def rejected(field: FieldDef, text: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_text(field, text)
    assert violations(caught) == [(field.name, rule, text)]


# --- defining fields ---------------------------------------------------------------------------


def test_field_types_are_the_literal_R3() -> None:
    assert get_args(FieldType) == FIELD_TYPES
    assert len(FIELD_TYPES) == 8


@pytest.mark.parametrize("type_", [t for t in FIELD_TYPES if t != "enum"])
def test_define_field_of_each_type_R3(type_: str) -> None:
    assert define_field("score", type_) == FieldDef("score", type_)  # type: ignore[arg-type]


def test_enum_options_from_comma_line_R3() -> None:
    field = define_field("tier", "enum", " Gold, Silver ,, Gold ,Bronze")
    assert field.options == ("Gold", "Silver", "Bronze")


def test_enum_options_from_list_R3() -> None:
    assert define_field("tier", "enum", [" Gold", "Silver", "Gold", ""]).options == (
        "Gold",
        "Silver",
    )


def test_listed_option_cannot_hold_comma_R3() -> None:
    with pytest.raises(ValidationError) as caught:
        define_field("tier", "enum", ["a,b"])
    assert violations(caught) == [("options", "option_syntax", "a,b")]


@pytest.mark.parametrize("options", [None, "", " , ,", []])
def test_enum_needs_options_R3(options: str | list[str] | None) -> None:
    with pytest.raises(ValidationError) as caught:
        define_field("tier", "enum", options)
    assert violations(caught) == [("options", "enum_needs_options", options)]


def test_options_only_for_enum_R3() -> None:
    with pytest.raises(ValidationError) as caught:
        define_field("score", "number", "1,2")
    assert violations(caught) == [("options", "options_only_for_enum", "1,2")]


@pytest.mark.parametrize("name", ["", "1st", "Score", "a-b", "a b", "a" * 64, "a\n", "ä", "_a"])
def test_field_name_syntax_R1(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        define_field(name, "line")
    assert violations(caught) == [("name", "field_name_syntax", name)]


def test_field_name_up_to_63_chars_R1() -> None:
    assert define_field("a" * 63, "line").name == "a" * 63


@pytest.mark.parametrize("name", ["first_name", "latitude", "utm_source", "email", "phones"])
def test_field_name_not_reserved_R1(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        define_field(name, "line")
    assert violations(caught) == [("name", "reserved_name", name)]


def test_unknown_type_R3() -> None:
    with pytest.raises(ValidationError) as caught:
        define_field("score", "integer")
    assert violations(caught) == [("type", "unknown_type", "integer")]


@pytest.mark.parametrize(
    ("type_", "allowed"), [(t, t in ("number", "line", "ip")) for t in FIELD_TYPES]
)
def test_unique_only_for_number_line_ip_R6(type_: str, allowed: bool) -> None:
    options = "a" if type_ == "enum" else None
    if allowed:
        assert define_field("key", type_, options, unique=True).unique
        return
    with pytest.raises(ValidationError) as caught:
        define_field("key", type_, options, unique=True)
    assert violations(caught) == [("unique", "unique_not_supported", True)]


def test_define_field_lists_every_violation_R3() -> None:
    with pytest.raises(ValidationError) as caught:
        define_field("Bad", "enum", None, unique=True)
    assert violations(caught) == [
        ("name", "field_name_syntax", "Bad"),
        ("options", "enum_needs_options", None),
        ("unique", "unique_not_supported", True),
    ]


# --- parsing file-import text ------------------------------------------------------------------


@pytest.mark.parametrize("type_", FIELD_TYPES)
@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_blank_text_is_no_value_R3(type_: str, text: str) -> None:
    assert parse_text(BY_TYPE[type_], text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        (" 42 ", 42),
        ("+7", 7),
        ("-0", 0),
        ("007", 7),
        (str(INT64_MAX), INT64_MAX),
        (str(INT64_MIN), INT64_MIN),
    ],
)
def test_number_is_signed_64_bit_integer_R3(text: str, value: int) -> None:
    assert parse_text(NUMBER, text) == value


@pytest.mark.parametrize("text", ["1.0", "1e3", "0x10", "1_000", "- 1", "12a", "٣", "+", "1 2"])
def test_number_rejects_non_integer_text_R3(text: str) -> None:
    rejected(NUMBER, text, "number_format")


@pytest.mark.parametrize("text", [str(INT64_MAX + 1), str(INT64_MIN - 1), "9" * 5000])
def test_number_rejects_overflow_R3(text: str) -> None:
    rejected(NUMBER, text, "number_format")


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.5", 1.5), (" -2 ", -2.0), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0), ("+1.5E-2", 0.015)],
)
def test_float_is_finite_double_R3(text: str, value: float) -> None:
    result = parse_text(FLOAT, text)
    assert isinstance(result, float)
    assert result == value


@pytest.mark.parametrize(
    "text",
    ["nan", "inf", "-Infinity", "1e400", "1_0.5", "1,5", ".", "e5", "0x1p3", "١.٥"],  # noqa: RUF001
)
def test_float_rejects_non_finite_or_malformed_R3(text: str) -> None:
    rejected(FLOAT, text, "float_format")


@pytest.mark.parametrize("text", ["Hello", "  padded  ", "a,b|c;d", "ünïcode ✓"])
def test_line_keeps_text_as_is_R3(text: str) -> None:
    assert parse_text(LINE, text) == text


def test_line_rejects_nul_character_R3() -> None:
    rejected(LINE, "a\x00b", "line_format")


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2019-08-22T00:00:00.000Z", "2019-08-22T00:00:00.000Z"),
        ("2019-08-22T00:00:00Z", "2019-08-22T00:00:00.000Z"),
        ("2019-08-22t00:00:00z", "2019-08-22T00:00:00.000Z"),
        ("2019-08-22 03:30:00+03:30", "2019-08-22T00:00:00.000Z"),
        ("2019-08-21T19:00:00-05:00", "2019-08-22T00:00:00.000Z"),
        ("2019-08-22T00:00:00-00:00", "2019-08-22T00:00:00.000Z"),
        ("2019-08-22T00:00:00.1Z", "2019-08-22T00:00:00.100Z"),
        ("2019-08-22T00:00:00.123456789Z", "2019-08-22T00:00:00.123Z"),
        ("2020-02-29T23:59:59.999+00:00", "2020-02-29T23:59:59.999Z"),
        ("2020-01-01T00:30:00+01:00", "2019-12-31T23:30:00.000Z"),
        (" 2019-08-22T00:00:00Z ", "2019-08-22T00:00:00.000Z"),
    ],
)
def test_date_is_rfc3339_stored_in_utc_R3(text: str, utc: str) -> None:
    assert parse_text(DATE, text) == utc


@pytest.mark.parametrize(
    "text",
    [
        "2019-08-22",  # no time
        "2019-08-22T00:00:00",  # no offset
        "2019-08-22T00:00Z",  # no seconds
        "2019-08-22T00:00:00.Z",
        "2019-02-30T00:00:00Z",
        "2019-13-01T00:00:00Z",
        "2019-08-22T24:00:00Z",
        "2019-08-22T00:00:60Z",  # leap seconds have no datetime
        "2019-08-22T00:00:00+24:00",
        "2019-08-22T00:00:00+01:60",
        "2019-08-22T00:00:00+0100",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "22/08/2019 00:00",
        "2019-08-22T00:00:00Z trailing",
        "２０１９-08-22T00:00:00Z",  # noqa: RUF001
    ],
)
def test_date_rejects_what_is_not_rfc3339_R3(text: str) -> None:
    rejected(DATE, text, "date_format")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        (" Yes ", True),
        ("1", True),
        ("false", False),
        ("False", False),
        ("no", False),
        ("NO", False),
        ("0", False),
    ],
)
def test_boolean_words_case_insensitive_R3(text: str, value: bool) -> None:
    assert parse_text(BOOLEAN, text) is value


@pytest.mark.parametrize("text", ["y", "n", "on", "off", "2", "truee", "t"])
def test_boolean_rejects_other_words_R3(text: str) -> None:
    rejected(BOOLEAN, text, "boolean_format")


@pytest.mark.parametrize(("text", "option"), [("Gold", "Gold"), (" Silver ", "Silver")])
def test_enum_is_exactly_one_option_R3(text: str, option: str) -> None:
    assert parse_text(ENUM, text) == option


@pytest.mark.parametrize("text", ["gold", "Bronze", "Gold,Silver", "Gol"])
def test_enum_rejects_anything_else_R3(text: str) -> None:
    rejected(ENUM, text, "enum_option")


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("192.168.0.1", "192.168.0.1"),
        (" 8.8.8.8 ", "8.8.8.8"),
        ("255.255.255.255", "255.255.255.255"),
    ],
)
def test_ip_is_ipv4_dotted_quad_R3(text: str, ip: str) -> None:
    assert parse_text(IP, text) == ip


@pytest.mark.parametrize(
    "text",
    ["010.1.1.1", "256.1.1.1", "1.2.3", "1.2.3.4.5", "::1", "1.2.3.4/24", "1.2.3.x", "3232235521"],
)
def test_ip_rejects_other_forms_R3(text: str) -> None:
    rejected(IP, text, "ip_format")


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("a,b,c", ["a", "b", "c"]),
        (" b | a ; c ", ["b", "a", "c"]),
        ("x,,;|y", ["x", "y"]),
        ("a,b,a,B", ["a", "b", "B"]),
        ("only one", ["only one"]),
        (",;|", None),
    ],
)
def test_tags_split_trim_dedupe_R3(text: str, tags: list[str]) -> None:
    assert parse_text(TAGS, text) == tags


def test_tags_reject_nul_character_R3() -> None:
    rejected(TAGS, "a\x00", "tags_format")


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=",|;\x00"))))
def test_tags_parse_is_idempotent_R3(items: list[str]) -> None:
    parsed = parse_text(TAGS, ",".join(items))
    expected = list(dict.fromkeys(i.strip() for i in items if i.strip()))
    assert parsed == (expected or None)
    assert parse_text(TAGS, "|".join(expected)) == parsed


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),  # noqa: DTZ001
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
)
def test_date_round_trips_through_any_offset_R3(moment: datetime, minutes: int) -> None:
    zone = timezone(timedelta(minutes=minutes))
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    stored = parse_text(DATE, local.isoformat())
    assert isinstance(stored, str)
    expected = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=UTC)
    assert datetime.fromisoformat(stored) == expected
    assert parse_text(DATE, stored) == stored


@given(st.integers(INT64_MIN, INT64_MAX))
def test_number_round_trips_R3(number: int) -> None:
    assert parse_text(NUMBER, f" {number} ") == number


# --- coercing API JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("type_", FIELD_TYPES)
def test_coerce_none_is_unset_R3(type_: str) -> None:
    assert coerce(BY_TYPE[type_], None) is None


@pytest.mark.parametrize(
    ("field", "value", "result"),
    [
        (NUMBER, " 12 ", 12),
        (DATE, "2019-08-22T02:00:00+02:00", "2019-08-22T00:00:00.000Z"),
        (BOOLEAN, "yes", True),
        (TAGS, "a;b", ["a", "b"]),
        (LINE, " ", None),
    ],
)
def test_coerce_string_is_parsed_as_text_R3(field: FieldDef, value: str, result: JsonValue) -> None:
    assert coerce(field, value) == result


@pytest.mark.parametrize(
    ("field", "value", "result"),
    [
        (NUMBER, 5, 5),
        (NUMBER, INT64_MIN, INT64_MIN),
        (FLOAT, 2, 2.0),
        (FLOAT, -0.25, -0.25),
        (BOOLEAN, False, False),
        (TAGS, [" a", "b ", "a", ""], ["a", "b"]),
        (TAGS, [], []),
    ],
)
def test_coerce_json_values_R3(field: FieldDef, value: JsonValue, result: JsonValue) -> None:
    coerced = coerce(field, value)
    assert coerced == result
    assert type(coerced) is type(result)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (NUMBER, True),
        (NUMBER, 1.0),
        (NUMBER, INT64_MAX + 1),
        (NUMBER, [1]),
        (FLOAT, False),
        (FLOAT, float("nan")),
        (FLOAT, float("inf")),
        (FLOAT, 10**400),
        (BOOLEAN, 1),
        (LINE, 5),
        (LINE, 1.5),
        (DATE, 1566432000),
        (ENUM, ["Gold"]),
        (IP, 3232235521),
        (TAGS, ["a,b"]),
        (TAGS, ["a|b"]),
        (TAGS, [1]),
        (TAGS, {"a": "b"}),
    ],
)
def test_coerce_rejects_wrong_json_type_R3(field: FieldDef, value: JsonValue) -> None:
    with pytest.raises(ValidationError) as caught:
        coerce(field, value)
    rule = "enum_option" if field.type == "enum" else f"{field.type}_format"
    assert violations(caught) == [(field.name, rule, value)]


# --- validating a profile's values ---------------------------------------------------------------

DEFS = {
    "score": FieldDef("score", "number"),
    "tier": FieldDef("tier", "enum", ("Gold", "Silver")),
    "tags": FieldDef("tags", "tags"),
}


def test_validate_custom_canonicalises_and_keeps_unset_R1() -> None:
    values: dict[str, JsonValue] = {"score": "7", "tier": None, "tags": "b,a,b"}
    assert validate_custom(DEFS, values) == {"score": 7, "tier": None, "tags": ["b", "a"]}


def test_validate_custom_collects_all_violations_R3() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_custom(DEFS, {"score": 1.5, "tier": "Bronze", "ghost": 1, "tags": ["ok"]})
    assert caught.value.violations == [
        Violation("custom.score", "number_format", 1.5),
        Violation("custom.tier", "enum_option", "Bronze"),
        Violation("custom.ghost", "unknown_field", "ghost"),
    ]


def test_validate_custom_text_omits_blank_cells_R3() -> None:
    values = {"score": " ", "tier": "Gold", "tags": " ; "}
    assert validate_custom_text(DEFS, values) == {"tier": "Gold"}


def test_validate_custom_text_collects_all_violations_R3() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_custom_text(DEFS, {"score": "1e3", "tier": "x", "nope": "1"})
    assert violations(caught) == [
        ("custom.score", "number_format", "1e3"),
        ("custom.tier", "enum_option", "x"),
        ("custom.nope", "unknown_field", "nope"),
    ]


# --- standard fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "names"),
    [
        ("personal", {"first_name", "last_name", "middle_name", "gender", "birthday", "language"}),
        ("reg", {"reg_date", "reg_ip", "optin_ip", "optin_date", "optin_source"}),
        ("reg", REG_LOCATION_FIELDS | UTM_FIELDS),
        ("tracked", LOCATION_FIELDS | {"latest_ip"}),
    ],
)
def test_standard_fields_by_tab_R2(group: str, names: frozenset[str]) -> None:
    assert {name: STANDARD_FIELDS[name].group for name in names} == dict.fromkeys(names, group)


def test_standard_field_names_match_their_keys_R2() -> None:
    assert all(name == f.name for name, f in STANDARD_FIELDS.items())
    assert STANDARD_FIELDS["gender"].options == ("male", "female", "other")
    with pytest.raises(TypeError):
        STANDARD_FIELDS["x"] = STANDARD_FIELDS["city"]  # type: ignore[index]


def test_contact_identities_are_not_standard_fields_R6() -> None:
    assert {"email", "phones", "phone"}.isdisjoint(STANDARD_FIELDS)


def test_location_and_utm_sets_R21() -> None:
    assert {
        "country",
        "region",
        "city",
        "zip",
        "timezone",
        "latitude",
        "longitude",
    } == LOCATION_FIELDS
    assert {"reg_country", "reg_city"} == REG_LOCATION_FIELDS
    assert {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"} == UTM_FIELDS


def test_validate_standard_canonicalises_R2() -> None:
    values: dict[str, JsonValue] = {
        "gender": "female",
        "birthday": "1990-05-01T00:00:00+02:00",
        "reg_ip": "10.0.0.1",
        "latitude": 59,
        "city": None,
    }
    assert validate_standard(values) == {
        "gender": "female",
        "birthday": "1990-04-30T22:00:00.000Z",
        "reg_ip": "10.0.0.1",
        "latitude": 59.0,
        "city": None,
    }


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("latitude", 90, True),
        ("latitude", -90.0, True),
        ("latitude", 90.5, False),
        ("latitude", "-91", False),
        ("longitude", 180, True),
        ("longitude", -180.0, True),
        ("longitude", 180.01, False),
        ("longitude", "-200", False),
    ],
)
def test_coordinates_in_range_R21(name: str, value: JsonValue, ok: bool) -> None:
    if ok:
        assert validate_standard({name: value}) == {name: float(value)}  # type: ignore[arg-type]
        return
    with pytest.raises(ValidationError) as caught:
        validate_standard({name: value})
    assert violations(caught) == [(f"fields.{name}", "range", value)]


def test_validate_standard_collects_all_violations_R2() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_standard(
            {"gender": "robot", "email": "a@b.c", "latest_ip": "::1", "longitude": 999}
        )
    assert violations(caught) == [
        ("fields.gender", "enum_option", "robot"),
        ("fields.email", "unknown_field", "email"),
        ("fields.latest_ip", "ip_format", "::1"),
        ("fields.longitude", "range", 999),
    ]


def test_validate_standard_text_R2() -> None:
    values = {"first_name": " Ann ", "last_name": "", "latitude": "59.91", "reg_date": " "}
    assert validate_standard_text(values) == {"first_name": " Ann ", "latitude": 59.91}
    with pytest.raises(ValidationError) as caught:
        validate_standard_text({"latitude": "north", "nope": "x"})
    assert violations(caught) == [
        ("fields.latitude", "float_format", "north"),
        ("fields.nope", "unknown_field", "nope"),
    ]


# --- reading -------------------------------------------------------------------------------------


def test_tabs_group_a_profile_R2() -> None:
    fields: dict[str, JsonValue] = {
        "first_name": "Ann",
        "reg_ip": "10.0.0.1",
        "city": "Oslo",
        "legacy": 1,
    }
    assert tabs(fields, {"score": 3}) == {
        "main": {"legacy": 1},
        "personal": {"first_name": "Ann"},
        "reg": {"reg_ip": "10.0.0.1"},
        "tracked": {"city": "Oslo"},
        "additional": {"score": 3},
    }


def test_tabs_of_empty_profile_R2() -> None:
    assert tabs({}, {}) == {"main": {}, "personal": {}, "reg": {}, "tracked": {}, "additional": {}}


_CELLS = st.one_of(
    st.sampled_from(["", " ", "7", "-3", "1.5", "x", "Gold", "yes", "10.0.0.1", "a|b", "|"]),
    st.sampled_from(["2024-02-29T10:00:00+05:30", "2023-02-29T10:00:00Z", "2024-01-01 00:00:00z"]),
    st.text(max_size=8),
)


@given(st.dictionaries(st.sampled_from([*BY_TYPE_NAMES, "nope"]), _CELLS, max_size=6))
def test_a_file_row_is_checked_as_each_of_its_cells_alone_R3(row: dict[str, str]) -> None:
    """A row's values are each cell's own canonical value, blanks left out; a row with bad
    cells names every one of them, as the cells checked one by one do."""
    defs = {f.name: f for f in BY_TYPE.values()}
    expected: dict[str, JsonValue] = {}
    errors: list[tuple[str, str, object]] = []
    for name, text in row.items():
        if name not in defs:
            errors.append((f"custom.{name}", "unknown_field", name))
            continue
        try:
            if (value := parse_text(defs[name], text)) is not None:
                expected[name] = value
        except ValidationError as error:
            errors += [(f"custom.{v.field}", v.rule, v.value) for v in error.violations]
    if errors:
        with pytest.raises(ValidationError) as caught:
            validate_custom_text(defs, row)
        assert violations(caught) == errors
    else:
        assert validate_custom_text(defs, row) == expected


@given(st.sampled_from(["91", "-90.5", "45.25", "x", ""]), st.sampled_from(["Ann", "", " "]))
def test_a_file_rows_standard_values_keep_their_ranges_R2(latitude: str, name: str) -> None:
    row = {"latitude": latitude, "first_name": name}
    if latitude in ("91", "-90.5", "x"):
        with pytest.raises(ValidationError) as caught:
            validate_standard_text(row)
        rule = "float_format" if latitude == "x" else "range"
        assert violations(caught) == [("fields.latitude", rule, latitude)]
    else:
        expected = {"latitude": float(latitude)} if latitude else {}
        assert validate_standard_text(row) == expected | (
            {"first_name": name} if name.strip() else {}
        )
