"""The profile fold: deterministic, order-respecting, batch-split invariant (DESIGN 5)."""

from __future__ import annotations

import dataclasses
import uuid

from hypothesis import given
from hypothesis import strategies as st

from domain.profile import fold, fold_all
from projections.profiles import Loaded, apply
from tests.factories import T0, imported, updated


def test_import_creates_profile_with_event_time() -> None:
    pid = uuid.uuid4()
    state = fold(None, imported(pid, 5, email="a@example.com", fields={"first_name": "Ann"}))
    assert state is not None
    assert state.profile_id == pid
    assert state.email == "a@example.com"
    assert state.fields == {"first_name": "Ann"}
    assert state.created_at == state.updated_at
    assert state.created_at.year == T0.year
    assert state.version == 1


def test_a_folded_state_has_every_field_and_equals_one_built_by_init() -> None:
    """The fold builds states without the dataclass `__init__` (`ProfileState.of`): each one
    must still carry exactly the declared fields, and compare equal to an `__init__` copy."""
    pid = uuid.uuid4()
    events = [imported(pid, 0, fields={"city": "Oslo"}), updated(pid, 1, set={"last_name": "B"})]
    state = fold_all(None, events)
    assert state is not None
    names = {f.name for f in dataclasses.fields(state)}
    assert set(vars(state)) == names
    assert dataclasses.replace(state) == state


def test_reimport_merges_fields_and_keeps_created_at() -> None:
    pid = uuid.uuid4()
    state = fold_all(
        None,
        [
            imported(pid, 0, fields={"first_name": "Ann", "city": "Oslo"}),
            imported(pid, 10, created=False, fields={"city": "Rome", "last_name": "Lee"}),
        ],
    )
    assert state is not None
    assert state.fields == {"first_name": "Ann", "city": "Rome", "last_name": "Lee"}
    assert state.created_at < state.updated_at
    assert state.version == 2


def test_update_sets_and_unsets() -> None:
    pid = uuid.uuid4()
    state = fold_all(
        None,
        [
            imported(pid, 0, fields={"a": 1, "b": 2}, custom={"vip": True}),
            updated(pid, 1, set={"a": 3, "b": None}, custom_unset=("vip",)),
        ],
    )
    assert state is not None
    assert state.fields == {"a": 3}
    assert state.custom == {}


def test_update_of_unknown_profile_changes_nothing() -> None:
    assert fold(None, updated(uuid.uuid4(), set={"a": 1})) is None


def test_phones_are_a_set_in_first_seen_order() -> None:
    pid = uuid.uuid4()
    state = fold_all(
        None,
        [imported(pid, 0, phones=("+4711", "+4722")), imported(pid, 1, phones=("+4722", "+4733"))],
    )
    assert state is not None
    assert state.phones == ("+4711", "+4722", "+4733")


_ops = st.lists(
    st.tuples(
        st.integers(0, 3), st.booleans(), st.sampled_from(["a", "b", "c"]), st.integers(0, 9)
    ),
    min_size=1,
    max_size=40,
)


@given(_ops, st.data())
def test_folding_in_any_split_of_batches_is_the_same_DESIGN5(
    ops: list[tuple[int, bool, str, int]], data: st.DataObject
) -> None:
    ids = [uuid.UUID(int=i + 1) for i in range(4)]
    events = [
        imported(ids[p], n, fields={k: v}) if is_import else updated(ids[p], n, set={k: v})
        for n, (p, is_import, k, v) in enumerate(ops)
    ]
    whole = apply(Loaded({}), events).upserts
    cut = data.draw(st.integers(0, len(events)))
    first = apply(Loaded({}), events[:cut]).upserts
    second = apply(Loaded(first), events[cut:]).upserts
    assert {**first, **second} == whole
