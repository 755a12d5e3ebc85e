"""What a profile did and what was done to it (R18): campaign actions, pixels, promo codes,
segments, triggers, scenarios, orders, relations and forms. Keyed by the profile id.

Location fields (`location`) are filled at intake from the IP (R21), so a replay never depends on
today's GeoIP file.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from contracts.envelope import EnvelopeBase


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The latest-action location fields an IP gives (R21, `domain.geo.tracked_fields`), each with
# the type its standard field has: nothing else may reach a profile's fields this way.
_PLACE_NAMES = {"country": 64, "region": 128, "city": 128, "zip": 32, "timezone": 64}
_COORDINATES = {"latitude": 90.0, "longitude": 180.0}


def _tracked_location(location: dict[str, JsonValue]) -> dict[str, JsonValue]:
    for name, value in location.items():
        if name in _PLACE_NAMES:
            if not isinstance(value, str) or len(value) > _PLACE_NAMES[name]:
                raise ValueError(f"{name} must be a text of at most {_PLACE_NAMES[name]} chars")
        elif name in _COORDINATES:
            bound = _COORDINATES[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if not -bound <= value <= bound:
                raise ValueError(f"{name} must be within ±{bound:g}")
        else:
            raise ValueError(f"{name} is not a location field")
    return location


class CampaignActionData(_Data):
    """A campaign message's fate, or the recipient's action on it."""

    campaign_id: str = Field(min_length=1, max_length=128)
    message_id: str | None = Field(default=None, max_length=128)
    resource_id: str | None = None
    channel: str | None = None
    sub_id: UUID | None = Field(default=None, description="The subscription it went to.")
    url: str | None = Field(default=None, max_length=2048, description="Clicked link.")
    ip: str | None = Field(default=None, max_length=45)
    location: dict[str, JsonValue] = Field(
        default_factory=dict, description="Filled at intake from `ip` (R21)."
    )

    _location = field_validator("location")(_tracked_location)


class PixelHitData(_Data):
    """The tracking pixel fired: a goal reached on a site or in an app."""

    goal: str | None = Field(default=None, max_length=200)
    value: float | None = None
    cost: float | None = None
    url: str | None = Field(default=None, max_length=2048)
    referrer: str | None = Field(default=None, max_length=2048)
    campaign_id: str | None = Field(default=None, max_length=128)
    pixel_data: dict[str, JsonValue] = Field(default_factory=dict)
    ip: str | None = Field(default=None, max_length=45)
    location: dict[str, JsonValue] = Field(
        default_factory=dict, description="Filled at intake from `ip` (R21)."
    )

    _location = field_validator("location")(_tracked_location)


class PromoCodeData(_Data):
    """A promo code attached to, detached from or activated by the profile."""

    code: str = Field(min_length=1, max_length=128)
    promo_id: str | None = Field(default=None, max_length=128)


class SegmentData(_Data):
    """The profile entered or left a static segment."""

    segment_id: str = Field(min_length=1, max_length=128)
    manual: bool = False


class TriggerSentData(_Data):
    """A trigger message went to the profile."""

    trigger_id: str = Field(min_length=1, max_length=128)
    manual: bool = False


class ScenarioData(_Data):
    """The profile entered or finished a scenario."""

    scenario_id: str = Field(min_length=1, max_length=128)
    manual: bool = False
    result: str | None = Field(default=None, max_length=200)


class OrderItem(_Data):
    """One line of an order."""

    sku: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=200)
    quantity: float = Field(gt=0)
    price: float


class OrderData(_Data):
    """An order of the profile, as the shop reports it."""

    order_id: str = Field(min_length=1, max_length=128)
    status: str = Field(min_length=1, max_length=64)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total: float
    items: tuple[OrderItem, ...] = ()


class RelationData(_Data):
    """A typed relation between this profile and another one (R25)."""

    relation_type: str = Field(min_length=1, max_length=64, description="e.g. like, recommend")
    other_profile_id: UUID


class FormSubmittedData(_Data):
    """A form filled in by the profile, with what was submitted."""

    form_id: str = Field(min_length=1, max_length=128)
    data: dict[str, JsonValue] = Field(default_factory=dict)
    utm: dict[str, str] = Field(default_factory=dict)
    update_utm: bool = Field(default=False, description="The form's 'update UTM' option (R22).")


class CampaignSent(EnvelopeBase):
    """`campaign.sent`, current version."""

    type: Literal["campaign.sent"] = "campaign.sent"
    schema_version: Literal[1] = 1
    data: CampaignActionData


class CampaignDelivered(EnvelopeBase):
    """`campaign.delivered`, current version."""

    type: Literal["campaign.delivered"] = "campaign.delivered"
    schema_version: Literal[1] = 1
    data: CampaignActionData


class CampaignOpened(EnvelopeBase):
    """`campaign.opened`, current version."""

    type: Literal["campaign.opened"] = "campaign.opened"
    schema_version: Literal[1] = 1
    data: CampaignActionData


class CampaignRead(EnvelopeBase):
    """`campaign.read`, current version."""

    type: Literal["campaign.read"] = "campaign.read"
    schema_version: Literal[1] = 1
    data: CampaignActionData


class CampaignClicked(EnvelopeBase):
    """`campaign.clicked`, current version."""

    type: Literal["campaign.clicked"] = "campaign.clicked"
    schema_version: Literal[1] = 1
    data: CampaignActionData


class CampaignConfirmationClicked(EnvelopeBase):
    """`campaign.confirmation_clicked`, current version."""

    type: Literal["campaign.confirmation_clicked"] = "campaign.confirmation_clicked"
    schema_version: Literal[1] = 1
    data: CampaignActionData


class CampaignHardBounced(EnvelopeBase):
    """`campaign.hard_bounced`, current version."""

    type: Literal["campaign.hard_bounced"] = "campaign.hard_bounced"
    schema_version: Literal[1] = 1
    data: CampaignActionData


class CampaignComplained(EnvelopeBase):
    """`campaign.complained`, current version."""

    type: Literal["campaign.complained"] = "campaign.complained"
    schema_version: Literal[1] = 1
    data: CampaignActionData


class CampaignUnsubscribeClicked(EnvelopeBase):
    """`campaign.unsubscribe_clicked`, current version."""

    type: Literal["campaign.unsubscribe_clicked"] = "campaign.unsubscribe_clicked"
    schema_version: Literal[1] = 1
    data: CampaignActionData


class PixelHit(EnvelopeBase):
    """`pixel.hit`, current version."""

    type: Literal["pixel.hit"] = "pixel.hit"
    schema_version: Literal[1] = 1
    data: PixelHitData


class PromoCodeAttached(EnvelopeBase):
    """`promo_code.attached`, current version."""

    type: Literal["promo_code.attached"] = "promo_code.attached"
    schema_version: Literal[1] = 1
    data: PromoCodeData


class PromoCodeDetached(EnvelopeBase):
    """`promo_code.detached`, current version."""

    type: Literal["promo_code.detached"] = "promo_code.detached"
    schema_version: Literal[1] = 1
    data: PromoCodeData


class PromoCodeActivated(EnvelopeBase):
    """`promo_code.activated`, current version."""

    type: Literal["promo_code.activated"] = "promo_code.activated"
    schema_version: Literal[1] = 1
    data: PromoCodeData


class SegmentEntered(EnvelopeBase):
    """`segment.entered`, current version."""

    type: Literal["segment.entered"] = "segment.entered"
    schema_version: Literal[1] = 1
    data: SegmentData


class SegmentExited(EnvelopeBase):
    """`segment.exited`, current version."""

    type: Literal["segment.exited"] = "segment.exited"
    schema_version: Literal[1] = 1
    data: SegmentData


class TriggerSent(EnvelopeBase):
    """`trigger.sent`, current version."""

    type: Literal["trigger.sent"] = "trigger.sent"
    schema_version: Literal[1] = 1
    data: TriggerSentData


class ScenarioEntered(EnvelopeBase):
    """`scenario.entered`, current version."""

    type: Literal["scenario.entered"] = "scenario.entered"
    schema_version: Literal[1] = 1
    data: ScenarioData


class ScenarioFinished(EnvelopeBase):
    """`scenario.finished`, current version."""

    type: Literal["scenario.finished"] = "scenario.finished"
    schema_version: Literal[1] = 1
    data: ScenarioData


class OrderRecorded(EnvelopeBase):
    """`order.recorded`, current version."""

    type: Literal["order.recorded"] = "order.recorded"
    schema_version: Literal[1] = 1
    data: OrderData


class RelationAdded(EnvelopeBase):
    """`relation.added`, current version."""

    type: Literal["relation.added"] = "relation.added"
    schema_version: Literal[1] = 1
    data: RelationData


class RelationRemoved(EnvelopeBase):
    """`relation.removed`, current version."""

    type: Literal["relation.removed"] = "relation.removed"
    schema_version: Literal[1] = 1
    data: RelationData


class FormSubmitted(EnvelopeBase):
    """`form.submitted`, current version."""

    type: Literal["form.submitted"] = "form.submitted"
    schema_version: Literal[1] = 1
    data: FormSubmittedData


ACTIVITY_EVENTS = (
    CampaignSent,
    CampaignDelivered,
    CampaignOpened,
    CampaignRead,
    CampaignClicked,
    CampaignConfirmationClicked,
    CampaignHardBounced,
    CampaignComplained,
    CampaignUnsubscribeClicked,
    PixelHit,
    PromoCodeAttached,
    PromoCodeDetached,
    PromoCodeActivated,
    SegmentEntered,
    SegmentExited,
    TriggerSent,
    ScenarioEntered,
    ScenarioFinished,
    OrderRecorded,
    RelationAdded,
    RelationRemoved,
    FormSubmitted,
)
