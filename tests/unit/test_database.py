"""Database structure: fields added and removed, names retired (R1, R3)."""

from __future__ import annotations

import pytest

from domain.database import DatabaseState, check_new_field, check_removal, fold_all
from domain.errors import ValidationError
from domain.fields import FieldDef
from tests.factories import database_event


def _db() -> DatabaseState:
    state = fold_all(
        None,
        [
            database_event("created", 0, name="Shop"),
            database_event("field_added", 1, name="plan", field_type="enum", options=("a", "b")),
            database_event("field_added", 2, name="visits", field_type="number"),
            database_event("field_removed", 3, name="plan"),
        ],
    )
    assert state is not None
    return state


def test_fields_added_and_removed_in_order_R1() -> None:
    state = _db()
    assert list(state.fields) == ["visits"]
    assert list(state.retired) == ["plan"]


def test_removed_name_cannot_come_back_R1() -> None:
    state = _db()
    with pytest.raises(ValidationError) as caught:
        check_new_field(state, FieldDef("plan", "line"))
    assert caught.value.violations[0].rule == "field_name_retired"


def test_existing_name_and_unknown_removal_are_refused_R1() -> None:
    state = _db()
    with pytest.raises(ValidationError, match="field_exists"):
        check_new_field(state, FieldDef("visits", "line"))
    with pytest.raises(ValidationError, match="unknown_field"):
        check_removal(state, "nope")


def test_unique_fields_are_listed_R6() -> None:
    state = fold_all(
        None,
        [
            database_event("created", 0, name="Shop"),
            database_event("field_added", 1, name="card", field_type="line", unique=True),
        ],
    )
    assert state is not None
    assert state.unique_fields == ("card",)
