"""The subscription list fold and its consent ledger (R9, R11, R13, R14, R16)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    Consent,
    Event,
    SubscriptionAdded,
    SubscriptionAddedData,
    SubscriptionCategoriesChanged,
    SubscriptionCategoriesChangedData,
    SubscriptionDeleted,
    SubscriptionDeletedData,
    SubscriptionEvicted,
    SubscriptionEvictedData,
    SubscriptionStatusChanged,
    SubscriptionStatusChangedData,
)
from domain.subscription_list import fold

PID = uuid.UUID(int=99)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def _env(seconds: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "source": "/tests",
        "time": T0 + timedelta(seconds=seconds),
        "subject": PID,
        "database_id": "db1",
    }


def added(sub_id: uuid.UUID, at: int, priority: int = 0, **kw: Any) -> Event:
    data = {
        "sub_id": sub_id,
        "resource_id": "r",
        "channel": "email",
        "contact": f"{sub_id.int}@example.com",
        "status": "subscribed",
        "priority": priority,
        "explicit_priority": False,
        "consent": Consent(how="form", ip="192.0.2.7"),
        **kw,
    }
    return SubscriptionAdded(**_env(at), data=SubscriptionAddedData(**data))


def test_add_moves_the_others_and_keeps_created_at_R13() -> None:
    folded = fold([], [added(A, 0), added(B, 5, reprioritised={A: 1})])
    by_id = {s.sub_id: s for s in folded.subscriptions}
    assert (by_id[A].priority, by_id[B].priority) == (1, 0)
    assert by_id[A].created_at == T0
    assert folded.changed == {A, B}


def test_evicted_leaves_and_is_in_the_ledger_R14() -> None:
    before = fold([], [added(A, 0), added(B, 1)]).subscriptions
    evict = SubscriptionEvicted(
        **_env(2), data=SubscriptionEvictedData(sub_id=A, scope="profile", replaced_by=C)
    )
    folded = fold(before, [evict, added(C, 2)])
    assert [s.sub_id for s in folded.subscriptions] == [B, C]
    assert folded.removed == {A}
    assert [(e.sub_id, e.change, e.detail) for e in folded.ledger] == [
        (A, "evicted", "profile"),
        (C, "added", None),
    ]


def test_changes_after_eviction_change_nothing_R14() -> None:
    evict = SubscriptionEvicted(
        **_env(1), data=SubscriptionEvictedData(sub_id=A, scope="profile", replaced_by=C)
    )
    status = SubscriptionStatusChanged(
        **_env(2),
        data=SubscriptionStatusChangedData(
            sub_id=A, status="unsubscribed", consent=Consent(how="api")
        ),
    )
    folded = fold([], [added(A, 0), evict, status])
    assert folded.subscriptions == ()
    assert [e.change for e in folded.ledger] == ["added", "evicted"]


def test_ledger_keeps_how_and_ip_of_every_consent_change_R9_R16() -> None:
    status = SubscriptionStatusChanged(
        **_env(1),
        data=SubscriptionStatusChangedData(
            sub_id=A,
            status="subscribed",
            consent=Consent(how="campaign", detail="confirmation_click"),
        ),
    )
    cats = SubscriptionCategoriesChanged(
        **_env(2),
        data=SubscriptionCategoriesChangedData(
            sub_id=A, categories={"deals": False}, consent=Consent(how="api", ip="198.51.100.1")
        ),
    )
    gone = SubscriptionDeleted(**_env(3), data=SubscriptionDeletedData(sub_id=A))
    folded = fold(
        [],
        [
            added(A, 0, status="unconfirmed", categories={"news": True, "deals": True}),
            status,
            cats,
            gone,
        ],
    )
    (sub,) = folded.subscriptions
    assert (sub.status, dict(sub.categories), sub.deleted) == (
        "subscribed",
        {"news": True, "deals": False},
        True,
    )
    assert [(e.change, e.how, e.ip, e.detail) for e in folded.ledger] == [
        ("added", "form", "192.0.2.7", None),
        ("status", "campaign", None, "confirmation_click"),
        ("categories", "api", "198.51.100.1", None),
        ("deleted", None, None, None),
    ]


@given(st.lists(st.sampled_from(["add", "status", "delete"]), max_size=30), st.data())
def test_folding_in_any_split_is_the_same_DESIGN5(kinds: list[str], data: st.DataObject) -> None:
    events: list[Event] = []
    ids: list[uuid.UUID] = []
    for step, kind in enumerate(kinds):
        if kind == "add" or not ids:
            ids.append(uuid.UUID(int=1000 + step))
            events.append(
                added(ids[-1], step, reprioritised={i: 1 + n for n, i in enumerate(ids[:-1])})
            )
        elif kind == "status":
            data_ = SubscriptionStatusChangedData(
                sub_id=ids[step % len(ids)], status="suspended", consent=Consent(how="api")
            )
            events.append(SubscriptionStatusChanged(**_env(step), data=data_))
        else:
            events.append(
                SubscriptionDeleted(**_env(step), data=SubscriptionDeletedData(sub_id=ids[0]))
            )
    whole = fold([], events)
    cut = data.draw(st.integers(0, len(events)))
    first = fold([], events[:cut])
    second = fold(first.subscriptions, events[cut:])
    assert second.subscriptions == whole.subscriptions
    assert first.ledger + second.ledger == whole.ledger
