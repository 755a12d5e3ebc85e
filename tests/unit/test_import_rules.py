"""Import and update checks against a database structure (R3, R6, R7)."""

from __future__ import annotations

import sys

import pytest

from domain.database import DatabaseState, fold_all
from domain.errors import ValidationError
from domain.imports import ImportItem, prepare
from domain.updates import UpdateItem, increment_violations, incremented, prepare_update
from tests.factories import database_event


def _db() -> DatabaseState:
    state = fold_all(
        None,
        [
            database_event("created", 0, name="Shop"),
            database_event("field_added", 1, name="visits", field_type="number"),
            database_event("field_added", 2, name="score", field_type="float"),
            database_event("field_added", 3, name="bought", field_type="tags"),
            database_event("field_added", 4, name="card", field_type="line", unique=True),
        ],
    )
    assert state is not None
    return state


def test_identity_keys_are_normalised_email_phones_and_unique_fields_R6() -> None:
    ready = prepare(
        _db(),
        ImportItem(
            email=" Ann@Example.COM ",
            phones=("+49 30 1234567", "0049301234567"),
            custom={"card": "C-9"},
        ),
    )
    assert ready.keys == (
        ("email", "ann@example.com"),
        ("phone", "+49301234567"),
        ("field:card", "C-9"),
    )


def test_blank_email_is_no_email_R6() -> None:
    assert prepare(_db(), ImportItem(email="   ")).email is None


def test_one_reference_at_most_and_known_statuses_R7() -> None:
    with pytest.raises(ValidationError) as caught:
        prepare(
            _db(),
            ImportItem(refs=(("profile_id", "x"), ("md5_id", "y")), status="sleeping"),
        )
    assert {v.rule for v in caught.value.violations} == {"one_reference_only", "status_unknown"}


def test_update_splits_sets_and_unsets_and_claims_new_contacts_R6() -> None:
    update = prepare_update(
        _db(),
        UpdateItem(
            fields={"first_name": "Kim", "city": None},
            custom={"visits": "3", "card": "C-1"},
            email="New@Example.com",
            email_given=True,
            phones_add=("+4930111111",),
        ),
    )
    assert (update.set, update.unset) == ({"first_name": "Kim"}, ("city",))
    assert update.custom_set == {"visits": 3, "card": "C-1"}
    assert update.claims == (
        ("email", "new@example.com"),
        ("phone", "+4930111111"),
        ("field:card", "C-1"),
    )
    assert not update.email_removed


def test_explicit_null_email_removes_it_R6() -> None:
    update = prepare_update(_db(), UpdateItem(email=None, email_given=True))
    assert update.email_removed
    assert update.claims == ()


def test_increment_and_tag_edits_need_fields_of_their_type_R3() -> None:
    with pytest.raises(ValidationError) as caught:
        prepare_update(
            _db(),
            UpdateItem(
                increment={"card": 1, "visits": 1.5, "nope": 1},
                tags_add={"visits": ("a",)},
                tags_remove={"bought": ("a",)},
            ),
        )
    assert {(v.field, v.rule) for v in caught.value.violations} == {
        ("increment.card", "increment_needs_number_or_float"),
        ("increment.visits", "number_format"),
        ("increment.nope", "unknown_field"),
        ("tags_add.visits", "tags_add_needs_tags"),
    }


def test_float_fields_take_fractional_increments_R3() -> None:
    assert prepare_update(_db(), UpdateItem(increment={"score": 0.5})).increment == {"score": 0.5}


@pytest.mark.parametrize(
    ("field", "amount", "rule"),
    [
        ("visits", True, "number_format"),  # JSON keeps booleans apart from numbers
        ("visits", 2**63, "number_format"),  # beyond a signed 64-bit integer
        ("visits", "3", "number_format"),
        ("score", False, "float_format"),
        ("score", float("inf"), "float_format"),  # what JSON's 1e309 parses to
        ("score", float("nan"), "float_format"),
    ],
)
def test_an_increment_is_a_number_of_the_fields_type_R3(
    field: str, amount: object, rule: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        prepare_update(_db(), UpdateItem(increment={field: amount}))  # type: ignore[dict-item]
    assert [(v.field, v.rule, v.value) for v in caught.value.violations] == [
        (f"increment.{field}", rule, amount)
    ]


def test_an_increment_that_leaves_the_range_is_refused_from_the_current_value_R3() -> None:
    top, bottom = 2**63 - 1, -(2**63)
    custom = {"visits": top, "score": 1e308, "low": bottom}
    broken = increment_violations({"visits": 1, "score": 1e308, "low": -1}, custom)
    assert [(v.field, v.rule, v.value) for v in broken] == [
        ("increment.visits", "number_range", 1),
        ("increment.score", "float_range", 1e308),
        ("increment.low", "number_range", -1),
    ]
    assert increment_violations({"visits": -1, "score": -1e308, "new": top}, custom) == []


def test_a_fold_saturates_at_the_types_bounds_R3() -> None:
    """Two increments the write API passed one by one may still overflow together."""
    assert incremented(2**63 - 1, 5) == 2**63 - 1
    assert incremented(-(2**63), -1) == -(2**63)
    assert incremented(1e308, 1e308) == sys.float_info.max
    assert incremented(-1e308, -1e308) == -sys.float_info.max
    assert incremented(None, 2) == 2
    assert incremented("text", 2.5) == 2.5  # a value of another type counts as nothing


def test_tags_to_add_or_remove_follow_the_tags_rules_R3() -> None:
    update = prepare_update(
        _db(),
        UpdateItem(tags_add={"bought": (" x ", "", "  ", "y", "x")}, tags_remove={"bought": ("",)}),
    )
    assert update.tags_add == {"bought": ("x", "y")}
    assert update.tags_remove == {"bought": ()}
    with pytest.raises(ValidationError) as caught:
        prepare_update(_db(), UpdateItem(tags_add={"bought": ("a;b", "c|d", "ok")}))
    assert [(v.field, v.rule, v.value) for v in caught.value.violations] == [
        ("tags_add.bought", "tags_format", "a;b"),
        ("tags_add.bought", "tags_format", "c|d"),
    ]
