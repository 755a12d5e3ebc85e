"""Which read models a batch's events are handed to (`read_models.project` sorts a batch out
in one pass): every model gets every event type it reads, and the timeline all of them (R18)."""

from __future__ import annotations

from contracts import CURRENT_VERSIONS
from projections import read_models

_NAMES = ("databases", "profiles", "subscriptions", "interactions")

EXPECTED = {
    ("databases",): {"database.created", "database.field_added", "database.field_removed"},
    # the profile fold, and the activity that moves a location (R21), UTM (R22) or a DOI (R9)
    ("profiles",): {
        "profile.imported",
        "profile.updated",
        "profile.status_changed",
        "campaign.opened",
        "campaign.clicked",
        "campaign.confirmation_clicked",
        "campaign.unsubscribe_clicked",  # a click: its IP locates (R21)
        "pixel.hit",
        "form.submitted",
    },
    # R20's status moves arrive as subscription events, decided at intake
    ("subscriptions",): {
        "resource.created",
        "resource.updated",
        "subscription.added",
        "subscription.evicted",
        "subscription.status_changed",
        "subscription.priority_changed",
        "subscription.categories_changed",
        "subscription.fields_changed",
        "subscription.deleted",
    },
    ("interactions",): {
        "segment.entered",
        "segment.exited",
        "scenario.entered",
        "scenario.finished",
        "promo_code.attached",
        "promo_code.detached",
        "promo_code.activated",
        "order.recorded",
        "relation.added",
        "relation.removed",
    },
    # R26: a deleted profile leaves every model that keeps something of it
    ("profiles", "subscriptions", "interactions"): {"profile.deleted"},
    # the timeline's only
    (): {
        "campaign.sent",
        "campaign.delivered",
        "campaign.read",
        "campaign.hard_bounced",
        "campaign.complained",
        "trigger.sent",
    },
}


def test_every_event_type_goes_to_the_models_that_read_it_R18_R26() -> None:
    routed: dict[tuple[str, ...], set[str]] = {}
    for event_type in CURRENT_VERSIONS:
        models = tuple(_NAMES[i] for i in read_models._ROUTES[event_type])
        routed.setdefault(models, set()).add(event_type)
    assert routed == EXPECTED
