"""File rows as import items: header roles and cell mapping (R3, R6)."""

from __future__ import annotations

import pytest

from domain.database import fold_all
from domain.errors import ValidationError
from domain.imports import prepare
from domain.rows import columns, item
from tests.factories import database_event

DB = fold_all(
    None,
    [
        database_event("created", 0, name="Shop"),
        database_event("field_added", 1, name="visits", field_type="number"),
        database_event("field_added", 2, name="card", field_type="line", unique=True),
    ],
)


def test_header_names_identity_standard_and_custom_columns_R3() -> None:
    assert DB is not None
    cols = columns(DB, [" email ", "first_name", "visits", "phones", "md5_id"])
    assert cols.roles == ("identity", "standard", "custom", "identity", "identity")


def test_header_with_unknown_or_repeated_columns_is_refused_R3() -> None:
    assert DB is not None
    with pytest.raises(ValidationError) as caught:
        columns(DB, ["email", "shoe", "email"])
    assert [(v.rule, v.value) for v in caught.value.violations] == [
        ("unknown_column", "shoe"),
        ("duplicate_column", "email"),
    ]


def test_row_becomes_text_item_with_phones_and_reference_R6() -> None:
    assert DB is not None
    cols = columns(DB, ["email", "phones", "visits", "card", "xxh_id", "status"])
    row = item(cols, ["a@x.org", "+4930100001; +4930100002|", " 7 ", "C-1", "", "unsubscribed"])
    assert row.text
    assert row.phones == ("+4930100001", "+4930100002")
    assert row.refs == ()
    ready = prepare(DB, row)
    assert ready.custom == {"visits": 7, "card": "C-1"}
    assert ready.status == "unsubscribed"
    assert ("field:card", "C-1") in ready.keys


def test_blank_cells_are_left_out_not_unset_R3() -> None:
    assert DB is not None
    cols = columns(DB, ["email", "visits", "first_name"])
    ready = prepare(DB, item(cols, ["", "", ""]))
    assert (ready.email, ready.custom, ready.fields) == (None, {}, {})


def test_row_of_the_wrong_width_is_an_error() -> None:
    assert DB is not None
    with pytest.raises(ValidationError, match="column_count"):
        item(columns(DB, ["email", "visits"]), ["a@x.org"])
