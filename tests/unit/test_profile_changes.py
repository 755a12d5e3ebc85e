"""Functional updates, global status and deletion in the profile fold (R3, R6, R7, R26)."""

from __future__ import annotations

import uuid

from contracts import CampaignActionData, CampaignConfirmationClicked, Event
from domain.profile import fold_all
from projections.profiles import Loaded, apply
from tests.factories import deleted, imported, opened, status_changed, updated

PID = uuid.UUID(int=7)


def test_increment_adds_to_number_and_starts_from_zero_R3() -> None:
    state = fold_all(
        None,
        [
            imported(PID, 0, custom={"visits": 2}),
            updated(PID, 1, increment={"visits": 3, "score": 1.5}),
            updated(PID, 2, increment={"visits": -1}),
        ],
    )
    assert state is not None
    assert state.custom == {"visits": 4, "score": 1.5}


def test_tags_add_keeps_first_appearance_and_remove_drops_R3() -> None:
    state = fold_all(
        None,
        [
            imported(PID, 0, custom={"bought": ["a", "b"]}),
            updated(PID, 1, tags_add={"bought": ("c", "a", "d", "c")}),
            updated(PID, 2, tags_remove={"bought": ("b", "zzz")}),
        ],
    )
    assert state is not None
    assert state.custom["bought"] == ["a", "c", "d"]


def test_email_change_and_removal_and_phones_R6() -> None:
    state = fold_all(
        None,
        [
            imported(PID, 0, email="a@example.com", phones=("+4930111111",)),
            updated(PID, 1, email="b@example.com", phones_add=("+4930222222",)),
            updated(PID, 2, phones_remove=("+4930111111",)),
        ],
    )
    assert state is not None
    assert (state.email, state.phones) == ("b@example.com", ("+4930222222",))
    state = fold_all(state, [updated(PID, 3, email_removed=True)])
    assert state is not None
    assert state.email is None


def test_status_changes_are_folded_and_import_can_set_status_R7() -> None:
    state = fold_all(None, [imported(PID, 0), status_changed(PID, 1, "hard_bounced")])
    assert state is not None
    assert state.status == "hard_bounced"
    state = fold_all(state, [imported(PID, 2, created=False, status="unsubscribed")])
    assert state is not None
    assert state.status == "unsubscribed"


def test_new_profile_is_subscribed_R7() -> None:
    state = fold_all(None, [imported(PID, 0)])
    assert state is not None
    assert state.status == "subscribed"


def test_delete_ends_the_profile_and_later_events_are_ignored_R26() -> None:
    assert (
        fold_all(None, [imported(PID, 0), deleted(PID, 1), updated(PID, 2, set={"a": 1})]) is None
    )


def test_apply_reports_deletion_with_its_time_R26() -> None:
    events: list[Event] = [imported(PID, 0), deleted(PID, 5)]
    changes = apply(Loaded({}), events)
    assert changes.upserts == {}
    assert changes.deletions == {PID: events[1].time}


def test_events_for_a_tombstoned_profile_change_nothing_R26() -> None:
    changes = apply(Loaded({}, frozenset({PID})), [imported(PID, 9)])
    assert changes.upserts == {}
    assert changes.deletions == {}


def test_located_fills_empty_fields_but_never_over_manual_ones_R21() -> None:
    state = fold_all(
        None,
        [
            imported(PID, 0, fields={"reg_city": "Manual City"}),
            imported(PID, 1, located={"reg_city": "Geo City", "reg_country": "GB"}),
        ],
    )
    assert state is not None
    assert state.fields == {"reg_city": "Manual City", "reg_country": "GB"}
    assert state.located == {"reg_country"}


def test_a_later_location_replaces_an_earlier_located_value_R21() -> None:
    state = fold_all(
        None,
        [
            imported(PID, 0, located={"reg_country": "GB"}),
            imported(PID, 1, located={"reg_country": "DE"}),
        ],
    )
    assert state is not None
    assert state.fields["reg_country"] == "DE"


def test_setting_a_located_field_by_hand_makes_it_manual_R21() -> None:
    state = fold_all(
        None,
        [
            imported(PID, 0, located={"reg_country": "GB"}),
            updated(PID, 1, set={"reg_country": "FR"}),
            imported(PID, 2, located={"reg_country": "DE"}),
        ],
    )
    assert state is not None
    assert state.fields["reg_country"] == "FR"
    assert state.located == frozenset()


def test_apply_marks_profiles_without_a_stored_row_as_new_R4() -> None:
    other = uuid.UUID(int=8)
    stored = fold_all(None, [imported(other, 0)])
    assert stored is not None
    changes = apply(
        Loaded({other: stored}),
        [imported(PID, 1), imported(other, 2, created=False, custom={"a": 1})],
    )
    assert set(changes.upserts) == {PID, other}
    assert changes.new == {PID}  # inserted by COPY; `other` is merged into its row


def _confirmation(seconds: int) -> Event:
    return CampaignConfirmationClicked(
        id=uuid.uuid4(),
        source="/tests",
        time=imported(PID, seconds).time,
        subject=PID,
        database_id="db1",
        data=CampaignActionData(campaign_id="doi"),
    )


def test_a_confirmation_click_makes_an_unconfirmed_profile_subscribed_R9_R7() -> None:
    state = fold_all(None, [imported(PID, 0, status="unconfirmed"), _confirmation(1)])
    assert state is not None
    assert (state.status, state.version) == ("subscribed", 2)
    for status in ("unsubscribed", "hard_bounced", "complainer"):
        kept = fold_all(None, [imported(PID, 0, status=status), _confirmation(1)])
        assert kept is not None
        assert (kept.status, kept.version) == (status, 1)  # a click overrides no refusal


def test_apply_marks_activity_and_status_moves_for_the_narrow_write_R21() -> None:
    """Only a stored profile whose email, phones, custom fields and mode stayed is narrow."""
    ids = [uuid.UUID(int=n) for n in (21, 22, 23, 24)]
    stored = {i: fold_all(None, [imported(i, 0, email=f"{i.int}@example.com")]) for i in ids}
    loaded = Loaded({i: s for i, s in stored.items() if s is not None})
    changes = apply(
        loaded,
        [
            opened(ids[0], 5),  # location only
            status_changed(ids[1], 5, "unsubscribed"),  # status only
            opened(ids[2], 5),
            updated(ids[2], 6, custom_set={"score": 3}),  # and a custom field: the whole row
            updated(ids[3], 6, email="new@example.com"),  # email: the whole row
        ],
    )
    assert set(changes.upserts) == set(ids)
    assert changes.activity_only == {ids[0], ids[1]}
    assert changes.new == frozenset()
