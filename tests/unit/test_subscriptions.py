"""Subscription rules: limits and eviction, priorities, recipient, statuses, channel fields.

R7, R9-R17, R20. Given a list of subscriptions / when a rule decides / then the outcome.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from contracts import (
    Consent,
    GlobalStatus,
    SubscriptionAdded,
    SubscriptionAddedData,
    SubscriptionEvicted,
    SubscriptionEvictedData,
)
from domain.errors import ValidationError, Violation
from domain.fields import FieldDef
from domain.subscription_list import fold
from domain.subscriptions import (
    CHANNEL_FIELDS,
    CHANNEL_LIMIT,
    PROFILE_LIMIT,
    STANDARD_CHANNELS,
    CampaignAction,
    NoRecipient,
    Placement,
    Subscription,
    addressed,
    check_categories,
    check_channel_name,
    choose_victim,
    eviction_key,
    initial_status,
    normalise_contact,
    place,
    recipient,
    sendable,
    status_after,
    validate_channel_fields,
    validate_custom_channel_fields,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES: tuple[GlobalStatus, ...] = get_args(GlobalStatus)
# R14's status tier, first evicted first; "subscribed" stands for any other status
EVICTED_FIRST: tuple[GlobalStatus, ...] = (
    "invalid",
    "hard_bounced",
    "complainer",
    "suspended",
    "unconfirmed",
    "subscribed",
)
_ids = itertools.count(1)


def sub(
    resource_id: str = "r1",
    channel: str = "email",
    *,
    status: GlobalStatus = "subscribed",
    priority: int = 0,
    age: int = 0,
    deleted: bool = False,
    categories: Mapping[str, bool] | None = None,
    sub_id: int | None = None,
) -> Subscription:
    """A subscription; `age` in minutes before T0, so a larger age is older."""
    return Subscription(
        sub_id=UUID(int=next(_ids) if sub_id is None else sub_id),
        resource_id=resource_id,
        channel=channel,
        contact="a@example.com",
        status=status,
        priority=priority,
        created_at=T0 - timedelta(minutes=age),
        categories={} if categories is None else categories,
        deleted=deleted,
    )


def victim_of(*subs: Subscription) -> Subscription:
    """choose_victim, after checking the answer does not depend on the candidates' order."""
    chosen = choose_victim(subs)
    assert choose_victim(list(reversed(subs))) == chosen
    return chosen


def violations(error: pytest.ExceptionInfo[ValidationError]) -> list[Violation]:
    return error.value.violations


# --- constants (R10, R14) ---------------------------------------------------------------------


def test_channels_and_limits_R10_R14() -> None:
    assert STANDARD_CHANNELS == ("email", "sms", "push", "telegram", "whatsapp")
    assert (PROFILE_LIMIT, CHANNEL_LIMIT) == (200, 20)


def test_subscription_defaults_are_empty_and_frozen_R10() -> None:
    s = Subscription(UUID(int=1), "r1", "push", "token", "subscribed", 0, T0)
    assert (dict(s.categories), dict(s.fields), dict(s.custom), s.deleted) == ({}, {}, {}, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.priority = 3  # type: ignore[misc]


# --- eviction order (R14) ---------------------------------------------------------------------


def test_eviction_prefers_deleted_R14() -> None:
    deleted = sub(deleted=True)
    assert victim_of(sub(), deleted) == deleted


@pytest.mark.parametrize(
    ("first", "later"),
    list(itertools.combinations(EVICTED_FIRST, 2)),
)
def test_eviction_status_order_R14(first: GlobalStatus, later: GlobalStatus) -> None:
    evicted = sub(status=first)
    assert victim_of(sub(status=later), evicted) == evicted


@pytest.mark.parametrize("first", EVICTED_FIRST[:-1])
def test_eviction_listed_status_before_unsubscribed_R14(first: GlobalStatus) -> None:
    evicted = sub(status=first)
    assert victim_of(sub(status="unsubscribed"), evicted) == evicted


def test_eviction_other_statuses_share_a_tier_R14() -> None:
    # subscribed and unsubscribed are both "any other status": priority decides between them
    low = sub(status="subscribed", priority=9)
    assert victim_of(sub(status="unsubscribed", priority=1), low) == low
    low = sub(status="unsubscribed", priority=9)
    assert victim_of(sub(status="subscribed", priority=1), low) == low


def test_eviction_prefers_lowest_priority_R14() -> None:
    lowest = sub(priority=7)
    assert victim_of(sub(priority=0), sub(priority=6), lowest) == lowest


def test_eviction_prefers_oldest_R14() -> None:
    oldest = sub(age=30)
    assert victim_of(sub(age=0), oldest, sub(age=29)) == oldest


def test_eviction_final_tie_break_is_sub_id_R14() -> None:
    first = sub(sub_id=10_001)
    assert victim_of(sub(sub_id=10_002), first) == first


def test_eviction_deleted_dominates_every_later_tier_R14() -> None:
    deleted = sub(status="subscribed", priority=0, age=0, deleted=True)
    assert victim_of(sub(status="invalid", priority=99, age=1000), deleted) == deleted


def test_eviction_status_dominates_priority_and_age_R14() -> None:
    unconfirmed = sub(status="unconfirmed", priority=0, age=0)
    assert victim_of(sub(status="subscribed", priority=99, age=1000), unconfirmed) == unconfirmed


def test_eviction_priority_dominates_age_R14() -> None:
    low = sub(priority=5, age=0)
    assert victim_of(sub(priority=1, age=1000), low) == low


def _expected_victim(a: Subscription, b: Subscription) -> Subscription:
    """R14 read tier by tier, as the SPEC says it, for two candidates."""
    if a.deleted != b.deleted:
        return a if a.deleted else b
    rank = {s: i for i, s in enumerate(EVICTED_FIRST[:-1])}
    ra, rb = rank.get(a.status, len(rank)), rank.get(b.status, len(rank))
    if ra != rb:
        return a if ra < rb else b
    if a.priority != b.priority:
        return a if a.priority > b.priority else b
    if a.created_at != b.created_at:
        return a if a.created_at < b.created_at else b
    return a if a.sub_id < b.sub_id else b


def test_eviction_order_over_every_pair_of_tiers_R14() -> None:
    grid = [
        sub(status=status, priority=priority, age=age, deleted=deleted)
        for deleted in (False, True)
        for status in STATUSES
        for priority in (0, 3)
        for age in (0, 5)
    ]
    for a, b in itertools.permutations(grid, 2):
        assert choose_victim([a, b]) == _expected_victim(a, b)
    ordered = sorted(grid, key=eviction_key)
    assert all(_expected_victim(x, y) == x for x, y in itertools.pairwise(ordered))


def test_choose_victim_needs_candidates_R14() -> None:
    with pytest.raises(ValueError, match="no candidates"):
        choose_victim([])


# --- limits and scope (R14) -------------------------------------------------------------------


def fill(resource_id: str, channel: str, count: int, **kwargs: Any) -> list[Subscription]:
    return [sub(resource_id, channel, priority=i, **kwargs) for i in range(count)]


def spread(count: int) -> list[Subscription]:
    """`count` subscriptions over resources bg0..bg19 (email), none of them full."""
    return [sub(f"bg{i % 20}", "email", priority=i // 20) for i in range(count)]


def test_under_both_limits_nobody_leaves_R14() -> None:
    existing = [*spread(PROFILE_LIMIT - CHANNEL_LIMIT), *fill("r1", "sms", CHANNEL_LIMIT - 1)]
    assert len(existing) == PROFILE_LIMIT - 1
    placement = place(existing, "r1", "sms", priority=None, raise_priority=False)
    assert (placement.victim, placement.scope) == (None, None)


def test_profile_limit_picks_across_resources_R14() -> None:
    best = sub("bg7", "email", status="invalid", age=100)
    existing = [*spread(190), *fill("r1", "sms", 9), best]
    assert len(existing) == PROFILE_LIMIT
    placement = place(existing, "r1", "sms", priority=None, raise_priority=False)
    assert (placement.victim, placement.scope) == (best, "profile")


def test_channel_limit_picks_inside_even_with_a_better_victim_elsewhere_R14() -> None:
    group = fill("r1", "sms", CHANNEL_LIMIT)
    elsewhere = [sub("r1", "email", deleted=True), sub("r2", "sms", status="invalid")]
    placement = place([*elsewhere, *group], "r1", "sms", priority=None, raise_priority=False)
    assert placement.victim == group[-1]  # the lowest priority of the group
    assert placement.scope == "resource_channel"


def test_both_limits_hit_picks_inside_the_resource_channel_R14() -> None:
    group = fill("r1", "sms", CHANNEL_LIMIT)
    elsewhere = [sub("bg0", "email", deleted=True), *spread(179)]
    existing = [*elsewhere, *group]
    assert len(existing) == PROFILE_LIMIT
    placement = place(existing, "r1", "sms", priority=3, raise_priority=False)
    assert (placement.victim, placement.scope) == (group[-1], "resource_channel")


def test_deleted_ones_count_toward_the_limits_R14() -> None:
    group = fill("r1", "push", CHANNEL_LIMIT, deleted=True)
    placement = place(group, "r1", "push", priority=None, raise_priority=False)
    assert placement.scope == "resource_channel"
    assert placement.victim == choose_victim(group)
    placement = place(spread(PROFILE_LIMIT), "r9", "push", priority=None, raise_priority=False)
    assert placement.scope == "profile"


def test_victim_leaves_before_priorities_are_computed_R13_R14() -> None:
    group = fill("r1", "sms", CHANNEL_LIMIT)  # priorities 0..19, the victim holds 19
    off = place(group, "r1", "sms", priority=None, raise_priority=False)
    assert (off.victim, off.priority) == (group[-1], 19)
    on = place(group, "r1", "sms", priority=None, raise_priority=True)
    assert on.victim == group[-1]
    assert set(on.reprioritised) == {s.sub_id for s in group[:-1]}


# --- priorities (R12, R13) --------------------------------------------------------------------


def test_raise_priority_puts_new_first_and_moves_its_peers_down_R13() -> None:
    peers = [sub("r1", "sms", priority=p) for p in (0, 2, 5)]
    gone = sub("r1", "sms", priority=1, deleted=True)
    others = [sub("r1", "email", priority=0), sub("r2", "sms", priority=0)]
    placement = place([*peers, gone, *others], "r1", "sms", priority=None, raise_priority=True)
    assert placement == Placement(0, {s.sub_id: s.priority + 1 for s in peers}, None, None)
    assert gone.sub_id not in placement.reprioritised


@pytest.mark.parametrize("raise_priority", [True, False])
def test_explicit_priority_leaves_the_others_unchanged_R13(raise_priority: bool) -> None:
    existing = [sub("r1", "sms", priority=p) for p in (0, 1, 2)]
    placement = place(existing, "r1", "sms", priority=1, raise_priority=raise_priority)
    assert (placement.priority, dict(placement.reprioritised)) == (1, {})


def test_option_off_goes_after_the_largest_R13() -> None:
    existing = [
        *(sub("r1", "sms", priority=p) for p in (0, 4, 2)),
        sub("r1", "sms", priority=9, deleted=True),
        sub("r1", "email", priority=30),
        sub("r2", "sms", priority=40),
    ]
    placement = place(existing, "r1", "sms", priority=None, raise_priority=False)
    assert (placement.priority, dict(placement.reprioritised)) == (5, {})


def test_option_off_first_of_its_resource_channel_gets_0_R13() -> None:
    existing = [sub("r1", "email", priority=7), sub("r1", "sms", priority=3, deleted=True)]
    assert place(existing, "r1", "sms", priority=None, raise_priority=False).priority == 0
    assert place([], "r1", "sms", priority=None, raise_priority=True).priority == 0


@pytest.mark.parametrize("raise_priority", [True, False])
def test_negative_priority_refused_R12(raise_priority: bool) -> None:
    with pytest.raises(ValidationError) as error:
        place([], "r1", "sms", priority=-1, raise_priority=raise_priority)
    assert violations(error) == [Violation("priority", "priority_negative", -1)]


def test_priority_0_is_allowed_R12() -> None:
    assert place([sub(priority=0)], "r1", "email", priority=0, raise_priority=False).priority == 0


# --- sendable and recipient (R7, R11, R12, R16) -----------------------------------------------


@pytest.mark.parametrize("global_status", STATUSES)
@pytest.mark.parametrize("status", STATUSES)
def test_sendable_needs_both_statuses_subscribed_R7(
    global_status: GlobalStatus, status: GlobalStatus
) -> None:
    expected = global_status == status == "subscribed"
    assert sendable(global_status, sub(status=status), None) is expected


def test_sendable_never_deleted_R7() -> None:
    assert not sendable("subscribed", sub(deleted=True), None)


def test_sendable_category_R16() -> None:
    s = sub(categories={"news": True, "promo": False})
    assert sendable("subscribed", s, "news")
    assert not sendable("subscribed", s, "promo")
    assert not sendable("subscribed", s, "missing")


@pytest.mark.parametrize("global_status", [s for s in STATUSES if s != "subscribed"])
def test_recipient_global_status_gates_everything_R7(global_status: GlobalStatus) -> None:
    result = recipient(global_status, [sub()], "r1", "email", None)
    assert isinstance(result, NoRecipient)
    assert result.reason == "global_status"


def test_recipient_without_a_subscription_R12() -> None:
    others = [sub("r2", "email"), sub("r1", "sms"), sub("r1", "email", deleted=True)]
    for subs in ([], others):
        result = recipient("subscribed", subs, "r1", "email", None)
        assert isinstance(result, NoRecipient)
        assert result.reason == "no_subscription"


def test_recipient_skips_a_suppressed_address_and_says_so_R8() -> None:
    best = replace(sub(priority=0), contact="gone@example.com")
    second = replace(sub(priority=1), contact="ok@example.com")
    assert recipient("subscribed", [best, second], "r1", "email", None, {"gone@example.com"}) == (
        second
    )
    alone = recipient("subscribed", [best], "r1", "email", None, {"gone@example.com"})
    assert isinstance(alone, NoRecipient)
    assert alone.reason == "address_suppressed"
    sms = replace(sub("r1", "sms"), contact="gone@example.com")  # only email addresses
    assert recipient("subscribed", [sms], "r1", "sms", None, {"gone@example.com"}) == sms


def test_an_action_naming_only_where_it_went_moves_the_one_it_went_to_R20() -> None:
    """Not every subscription of the resource and channel: the one its message went to."""
    top = sub(priority=1)
    low = sub(priority=3)
    off = sub(priority=0, status="unsubscribed")
    other = sub("r2", priority=0)
    assert addressed([low, top, off, other], "r1", "email", "hard_bounce") == top
    assert addressed([low, top, off, other], "r1", "email", "unsubscribe_click") == top
    assert addressed([off], "r1", "email", "complaint") is None  # nothing was sent to it
    waiting = sub(priority=5, status="unconfirmed")
    assert addressed([top, waiting], "r1", "email", "confirmation_click") == waiting  # R9
    assert addressed([top, low], "r1", "sms", "hard_bounce") is None


def test_recipient_highest_priority_wins_R12() -> None:
    best = sub(priority=1, age=50)
    assert (
        recipient("subscribed", [sub(priority=3), best, sub(priority=2)], "r1", "email", None)
        == best
    )


def test_recipient_ties_go_to_the_newest_R12() -> None:
    newest = sub(priority=1, age=0)
    subs = [sub(priority=1, age=10), newest, sub(priority=1, age=5)]
    assert recipient("subscribed", subs, "r1", "email", None) == newest
    assert recipient("subscribed", subs[::-1], "r1", "email", None) == newest


def test_recipient_full_tie_is_deterministic_R12() -> None:
    first, second = sub(sub_id=20_001), sub(sub_id=20_002)
    assert recipient("subscribed", [second, first], "r1", "email", None) == first
    assert recipient("subscribed", [first, second], "r1", "email", None) == first


def test_recipient_skips_unsendable_statuses_R7_R12() -> None:
    ready = sub(priority=5)
    subs = [sub(priority=0, status="unsubscribed"), sub(priority=1, status="unconfirmed"), ready]
    assert recipient("subscribed", subs, "r1", "email", None) == ready


def test_recipient_none_sendable_R7() -> None:
    subs = [sub(status="unsubscribed"), sub(status="hard_bounced")]
    result = recipient("subscribed", subs, "r1", "email", "news")
    assert isinstance(result, NoRecipient)
    assert result.reason == "no_sendable_subscription"


def test_recipient_deleted_never_chosen_R7() -> None:
    fallback = sub(priority=9, age=100)
    subs = [sub(priority=0, deleted=True), fallback]
    assert recipient("subscribed", subs, "r1", "email", None) == fallback


def test_recipient_category_subscribed_R16() -> None:
    off = sub(priority=0, categories={"news": False})
    on = sub(priority=5, categories={"news": True})
    assert recipient("subscribed", [off, on], "r1", "email", "news") == on
    assert recipient("subscribed", [off, on], "r1", "email", None) == off


@pytest.mark.parametrize("categories", [{"news": False}, {}, {"promo": True}])
def test_recipient_category_unsubscribed_or_missing_R16(categories: dict[str, bool]) -> None:
    result = recipient("subscribed", [sub(categories=categories)], "r1", "email", "news")
    assert isinstance(result, NoRecipient)
    assert result.reason == "category_unsubscribed"


def test_recipient_other_resource_untouched_R11() -> None:
    mine = sub("r2", "email", priority=3)
    subs = [sub("r1", "email", status="unsubscribed"), sub("r2", "sms", priority=0), mine]
    assert recipient("subscribed", subs, "r2", "email", None) == mine
    gone = recipient("subscribed", subs, "r1", "email", None)
    assert isinstance(gone, NoRecipient)
    assert gone.reason == "no_sendable_subscription"


# --- statuses (R9, R20) -----------------------------------------------------------------------

ACTIONS: tuple[CampaignAction, ...] = get_args(CampaignAction)
TARGET: dict[CampaignAction, GlobalStatus] = {
    "hard_bounce": "hard_bounced",
    "complaint": "complainer",
    "unsubscribe_click": "unsubscribed",
}


@pytest.mark.parametrize("current", STATUSES)
def test_confirmation_click_confirms_only_unconfirmed_R9(current: GlobalStatus) -> None:
    expected = "subscribed" if current == "unconfirmed" else None
    assert status_after(current, "confirmation_click") == expected


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("action", list(TARGET))
def test_campaign_actions_set_status_R20(current: GlobalStatus, action: CampaignAction) -> None:
    expected = None if current == TARGET[action] else TARGET[action]
    assert status_after(current, action) == expected


def test_every_campaign_action_has_a_rule_R9_R20() -> None:
    assert set(ACTIONS) == {*TARGET, "confirmation_click"}


def test_initial_status_follows_opt_in_R9() -> None:
    assert initial_status("double") == "unconfirmed"
    assert initial_status("single") == "subscribed"


# --- channel fields (R17) ---------------------------------------------------------------------


def test_channel_field_catalogue_R17() -> None:
    enums = {n: f.options for n, f in CHANNEL_FIELDS.items() if f.type == "enum"}
    assert enums == {
        "device_type": ("desktop", "mobile", "other"),
        "platform": ("windows", "linux", "mac", "opera", "ios", "blackberry", "android"),
        "browser": (
            "bots",
            "internet_explorer",
            "firefox",
            "safari",
            "facebook",
            "chrome",
            "opera",
            "outlook",
            "thunderbird",
        ),
    }
    assert {n for n, f in CHANNEL_FIELDS.items() if f.type == "boolean"} == {"ad_tracking_allowed"}
    lines = {n for n, f in CHANNEL_FIELDS.items() if f.type == "line"}
    assert lines == {
        "device_model",
        "device_name",
        "platform_version",
        "platform_time_zone",
        "platform_language",
        "ad_identifier",
        "application_id",
        "application_installation_id",
        "application_version",
        "browser_version",
    }
    assert all(f.name == n for n, f in CHANNEL_FIELDS.items())


def test_channel_fields_canonical_R17() -> None:
    values: dict[str, JsonValue] = {
        "device_type": " mobile ",
        "platform": "ios",
        "browser": "safari",
        "ad_tracking_allowed": "Yes",
        "device_model": "iPhone 15",
        "platform_version": None,
    }
    assert validate_channel_fields(values) == {
        "device_type": "mobile",
        "platform": "ios",
        "browser": "safari",
        "ad_tracking_allowed": True,
        "device_model": "iPhone 15",
        "platform_version": None,
    }


def test_channel_fields_every_violation_at_once_R17() -> None:
    values: dict[str, JsonValue] = {
        "device_type": "tablet",
        "platform": "Windows",
        "ad_tracking_allowed": 1,
        "colour": "red",
        "browser": "chrome",
    }
    with pytest.raises(ValidationError) as error:
        validate_channel_fields(values)
    assert violations(error) == [
        Violation("fields.device_type", "enum_option", "tablet"),
        Violation("fields.platform", "enum_option", "Windows"),
        Violation("fields.ad_tracking_allowed", "boolean_format", 1),
        Violation("fields.colour", "unknown_field", "colour"),
    ]


def test_custom_channel_fields_typed_as_R3_R17() -> None:
    defs = {"n": FieldDef("n", "number"), "tier": FieldDef("tier", "enum", ("gold", "silver"))}
    assert validate_custom_channel_fields(defs, {"n": "42", "tier": "gold"}) == {
        "n": 42,
        "tier": "gold",
    }
    with pytest.raises(ValidationError) as error:
        validate_custom_channel_fields(defs, {"n": 1.5, "x": 1, "tier": "bronze"})
    assert violations(error) == [
        Violation("custom.n", "number_format", 1.5),
        Violation("custom.x", "unknown_field", "x"),
        Violation("custom.tier", "enum_option", "bronze"),
    ]


# --- contacts, channel names, categories (R10, R16) -------------------------------------------


@pytest.mark.parametrize(
    ("channel", "raw", "expected"),
    [
        ("email", "  Ann@Example.COM ", "ann@example.com"),
        ("sms", "+1 (555) 010-0000", "+15550100000"),
        ("whatsapp", "0044 20 7946 0958", "+442079460958"),
        ("push", "  tok:EN-123 ", "tok:EN-123"),
        ("telegram", "@ann", "@ann"),
        ("viber", " 12345 ", "12345"),
        ("push", "x" * 512, "x" * 512),
    ],
)
def test_contact_normalised_per_channel_R10(channel: str, raw: str, expected: str) -> None:
    assert normalise_contact(channel, raw) == expected


@pytest.mark.parametrize(
    ("channel", "raw", "rule"),
    [
        ("email", "not-an-email", "email_syntax"),
        ("sms", "555-0100", "phone_e164"),
        ("whatsapp", "ann@example.com", "phone_e164"),
        ("push", "   ", "contact_syntax"),
        ("telegram", "", "contact_syntax"),
        ("push", "x" * 513, "contact_syntax"),
        ("viber", "ab\ncd", "contact_syntax"),
        ("push", "ab\x00", "contact_syntax"),
        ("telegram", "a\x7fb", "contact_syntax"),
    ],
)
def test_bad_contact_refused_R10(channel: str, raw: str, rule: str) -> None:
    with pytest.raises(ValidationError) as error:
        normalise_contact(channel, raw)
    assert violations(error) == [Violation("contact", rule, raw)]


@pytest.mark.parametrize("name", ["viber", "my_channel2", "a", "a" + "b" * 31])
def test_custom_channel_name_accepted_R10(name: str) -> None:
    check_channel_name(name)


@pytest.mark.parametrize(
    "name", ["", "Viber", "1abc", "_x", "a-b", "a b", "a" + "b" * 32, *STANDARD_CHANNELS]
)
def test_custom_channel_name_refused_R10(name: str) -> None:
    with pytest.raises(ValidationError) as error:
        check_channel_name(name)
    assert [v.rule for v in violations(error)] == ["channel_name_syntax"]
    assert violations(error)[0].value == name


def test_categories_checked_and_deduplicated_in_order_R16() -> None:
    names = ["news", "9lives", "news", "promo-1", "a_b", "x" * 64, "9lives"]
    assert check_categories(names) == ("news", "9lives", "promo-1", "a_b", "x" * 64)
    assert check_categories([]) == ()


def test_bad_categories_each_named_R16() -> None:
    with pytest.raises(ValidationError) as error:
        check_categories(["ok", "News", "-x", "", "y" * 65, "a b"])
    assert [(v.rule, v.value) for v in violations(error)] == [
        ("category_syntax", bad) for bad in ["News", "-x", "", "y" * 65, "a b"]
    ]


# --- properties: the limits always hold (R13, R14) --------------------------------------------

RESOURCES = ("r0", "r1", "r2")
CHANNELS = ("email", "sms")
GROUPS = tuple(itertools.product(RESOURCES, CHANNELS))

add_op = st.tuples(
    st.just("add"),
    st.sampled_from(GROUPS),
    st.none() | st.integers(0, 30),
    st.booleans(),
)
delete_op = st.tuples(st.just("delete"), st.integers(0, 10_000))
status_op = st.tuples(st.just("status"), st.integers(0, 10_000), st.sampled_from(STATUSES))
operations = st.lists(st.one_of(add_op, add_op, delete_op, status_op), min_size=5, max_size=40)


@st.composite
def starting_lists(draw: st.DrawFn) -> list[Subscription]:
    """A full-ish profile: each active group 0..20 deep, background up to the profile limit.

    The subscriptions' state comes from one drawn seed, so the lists stay cheap to generate.
    """
    # most groups start nearly full, so the channel limit is hit often
    depth = st.integers(0, CHANNEL_LIMIT) | st.integers(CHANNEL_LIMIT - 3, CHANNEL_LIMIT)
    depths = draw(st.lists(depth, min_size=6, max_size=6))
    room = PROFILE_LIMIT - sum(depths)
    background = draw(st.integers(max(0, room - 25), room))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    places = [g for g, depth in zip(GROUPS, depths, strict=True) for _ in range(depth)]
    places += [(f"bg{i % 10}", CHANNELS[i % 2]) for i in range(background)]
    return [
        Subscription(
            sub_id=UUID(int=rnd.getrandbits(128)),
            resource_id=resource_id,
            channel=channel,
            contact="c",
            status=rnd.choice(STATUSES),
            priority=rnd.randrange(25),
            created_at=T0 - timedelta(minutes=rnd.randrange(10_000)),
            deleted=rnd.random() < 0.1,
        )
        for resource_id, channel in places
    ]


def _spec_victims(candidates: Sequence[Subscription]) -> list[Subscription]:
    """R14 read as successive filters, written apart from the sort key under test: deleted ones
    first; then invalid, hard_bounced, complainer, suspended, unconfirmed, in that order; then
    the lowest priority (the largest number); then the oldest. Who is left is a fair victim."""
    pool = [c for c in candidates if c.deleted] or list(candidates)
    for status in ("invalid", "hard_bounced", "complainer", "suspended", "unconfirmed"):
        if tier := [c for c in pool if c.status == status]:
            pool = tier
            break
    worst = max(c.priority for c in pool)
    pool = [c for c in pool if c.priority == worst]
    oldest = min(c.created_at for c in pool)
    return [c for c in pool if c.created_at == oldest]


def _check_placement(
    subs: Sequence[Subscription],
    group: tuple[str, str],
    priority: int | None,
    raise_priority: bool,
    placement: Placement,
) -> None:
    same = [s for s in subs if (s.resource_id, s.channel) == group]
    if len(same) >= CHANNEL_LIMIT:
        scope, candidates = "resource_channel", same
    elif len(subs) >= PROFILE_LIMIT:
        scope, candidates = "profile", list(subs)
    else:
        assert (placement.victim, placement.scope) == (None, None)
        candidates = []
    if candidates:
        assert placement.scope == scope
        assert placement.victim in _spec_victims(candidates)
    peers = {s.sub_id for s in same if not s.deleted and s != placement.victim}
    assert set(placement.reprioritised) <= peers
    if priority is not None:
        assert (placement.priority, dict(placement.reprioritised)) == (priority, {})
    elif raise_priority:
        assert placement.priority == 0
        assert set(placement.reprioritised) == peers


def _apply_add(
    subs: list[Subscription],
    step: int,
    group: tuple[str, str],
    placement: Placement,
    explicit: bool,
) -> list[Subscription]:
    """The placement as the events the intake appends, through the real fold (what a replay
    of the log does): an eviction first, then the addition with who moved (R13)."""
    new_id = UUID(int=2**127 + step)
    envelope = {
        "source": "/tests",
        "time": T0 + timedelta(minutes=step),
        "subject": UUID(int=1),
        "database_id": "db1",
    }
    events: list[Any] = []
    if placement.victim is not None:
        assert placement.scope is not None
        evicted = SubscriptionEvictedData(
            sub_id=placement.victim.sub_id, scope=placement.scope, replaced_by=new_id
        )
        events.append(SubscriptionEvicted(id=UUID(int=2**126 + step), **envelope, data=evicted))
    added = SubscriptionAddedData(
        sub_id=new_id,
        resource_id=group[0],
        channel=group[1],
        contact="c",
        status="subscribed",
        priority=placement.priority,
        explicit_priority=explicit,
        reprioritised=dict(placement.reprioritised),
        consent=Consent(how="api"),
    )
    events.append(SubscriptionAdded(id=UUID(int=2**125 + step), **envelope, data=added))
    return list(fold(subs, events).subscriptions)


@settings(max_examples=200, deadline=None)
@given(starting_lists(), operations)
def test_limits_always_hold_R13_R14(start: list[Subscription], ops: list[tuple[Any, ...]]) -> None:
    subs = start
    for step, op in enumerate(ops):
        if op[0] == "add":
            _, group, priority, raise_priority = op
            placement = place(subs, *group, priority=priority, raise_priority=raise_priority)
            _check_placement(subs, group, priority, raise_priority, placement)
            subs = _apply_add(subs, step, group, placement, priority is not None)
        elif subs:
            index = op[1] % len(subs)
            change = {"deleted": True} if op[0] == "delete" else {"status": op[2]}
            subs[index] = dataclasses.replace(subs[index], **change)
        assert len(subs) <= PROFILE_LIMIT
        per_group = Counter((s.resource_id, s.channel) for s in subs)
        assert max(per_group.values(), default=0) <= CHANNEL_LIMIT
        assert len({s.sub_id for s in subs}) == len(subs)


subscriptions = st.builds(
    Subscription,
    sub_id=st.uuids(),
    resource_id=st.sampled_from(RESOURCES),
    channel=st.sampled_from(CHANNELS),
    contact=st.just("c"),
    status=st.sampled_from(STATUSES),
    priority=st.integers(0, 5),
    created_at=st.integers(0, 5).map(lambda m: T0 + timedelta(minutes=m)),
    categories=st.dictionaries(st.sampled_from(["news", "promo"]), st.booleans()),
    deleted=st.booleans(),
)
sub_lists = st.lists(subscriptions, max_size=12, unique_by=lambda s: s.sub_id)


@settings(max_examples=200)
@given(sub_lists.filter(bool), st.randoms(use_true_random=False))
def test_victim_does_not_depend_on_order_R14(subs: list[Subscription], rnd: random.Random) -> None:
    shuffled = list(subs)
    rnd.shuffle(shuffled)
    victim = choose_victim(subs)
    assert choose_victim(shuffled) == victim
    assert all(_expected_victim(victim, s) == victim for s in subs)


@settings(max_examples=200)
@given(
    st.sampled_from(STATUSES),
    sub_lists,
    st.sampled_from(GROUPS),
    st.none() | st.sampled_from(["news", "promo"]),
)
def test_recipient_is_the_best_sendable_R7_R12_R16(
    global_status: GlobalStatus,
    subs: list[Subscription],
    group: tuple[str, str],
    category: str | None,
) -> None:
    result = recipient(global_status, subs, *group, category)
    ready = [
        s
        for s in subs
        if (s.resource_id, s.channel) == group and sendable(global_status, s, category)
    ]
    if isinstance(result, NoRecipient):
        assert not ready
        return
    assert result in ready
    for other in ready:
        assert (result.priority, -result.created_at.timestamp()) <= (
            other.priority,
            -other.created_at.timestamp(),
        )
