"""Import and update checks against a database structure (R3, R6, R7)."""

from __future__ import annotations

import pytest

from domain.database import DatabaseState, fold_all
from domain.errors import ValidationError
from domain.imports import ImportItem, prepare
from domain.updates import UpdateItem, prepare_update
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
