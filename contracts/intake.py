"""The public intake contract: what upstream services publish to `profiles.intake.v1` or
`POST /v1/events`. An event names its profile by any identifier; the intake resolves it and
appends the canonical event (same `id`, so a double publish is applied once).

    from contracts.intake import PublicEvent, ProfileRef
    event = PublicEvent(id=uuid4(), type="campaign.opened", source="/sender",
                        profile=ProfileRef(database_id="shop", email="ann@example.com"),
                        data={"campaign_id": "spring", "ip": "81.2.69.142"})
    producer.send("profiles.intake.v1", event.model_dump_json().encode())
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from contracts.activity_events import ACTIVITY_EVENTS

# the span of an event's `time` (`PublicEvent._in_range`)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

PUBLIC_TYPES: tuple[str, ...] = tuple(c.model_fields["type"].default for c in ACTIVITY_EVENTS)
PublicType = Literal[
    "campaign.sent",
    "campaign.delivered",
    "campaign.opened",
    "campaign.read",
    "campaign.clicked",
    "campaign.confirmation_clicked",
    "campaign.hard_bounced",
    "campaign.complained",
    "campaign.unsubscribe_clicked",
    "pixel.hit",
    "promo_code.attached",
    "promo_code.detached",
    "promo_code.activated",
    "segment.entered",
    "segment.exited",
    "trigger.sent",
    "scenario.entered",
    "scenario.finished",
    "order.recorded",
    "relation.added",
    "relation.removed",
    "form.submitted",
]


class ProfileRef(BaseModel):
    """Which profile: by id, MD5 or XXH identifier, or database + email or phone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile_id: UUID | None = None
    md5_id: str | None = Field(default=None, max_length=32)
    xxh_id: str | None = Field(default=None, max_length=16)
    database_id: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _one_way(self) -> ProfileRef:
        ways = [
            self.profile_id is not None,
            self.md5_id is not None,
            self.xxh_id is not None,
            self.email is not None or self.phone is not None,
        ]
        if sum(ways) != 1:
            raise ValueError("name the profile one way: profile_id, md5_id, xxh_id, or email/phone")
        if (self.email is not None or self.phone is not None) and self.database_id is None:
            raise ValueError("email and phone identify a profile within a database_id")
        if self.email is not None and self.phone is not None:
            raise ValueError("give email or phone, not both")
        return self


class PublicEvent(BaseModel):
    """One event from an upstream service; `data` is the `data` of the canonical type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID = Field(description="The publisher's event id: a second publish is a duplicate.")
    type: PublicType
    source: str = Field(min_length=1, max_length=200)
    time: AwareDatetime | None = Field(default=None, description="When; default: on arrival.")
    profile: ProfileRef
    schema_version: int | None = Field(
        default=None,
        ge=1,
        description="The version of `data` the publisher wrote; absent: the current one. A "
        "version this service does not know is refused (`unsupported_version`).",
    )
    data: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        """Within EARLIEST..LATEST in UTC: a time the folds can convert and compare (year 1 at
        +01:00 is year 0 in UTC, which Python cannot hold: such an event was accepted, then
        buried by the projector), and one an event can plausibly have."""
        if value is None:
            return value
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            utc = None
        if utc is None or not EARLIEST <= utc < LATEST:
            raise PydanticCustomError(
                "time_range", "must lie from 1900-01-01 to before 2200-01-01, in UTC"
            )
        return value

    def data_class(self) -> Any:
        """The pydantic model that `data` must satisfy."""
        return _DATA[self.type]


_DATA: dict[str, Any] = {
    c.model_fields["type"].default: c.model_fields["data"].annotation for c in ACTIVITY_EVENTS
}
