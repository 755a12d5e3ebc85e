"""Resources and subscriptions (R9-R17): the events that change them.

Resource events are keyed by `resource_subject(resource_id)`; subscription events by the profile
id. Subscription events carry their outcomes (the priority given, who moved down, who was
replaced), decided once at intake by the domain rules, so a replay never re-decides.
"""

from __future__ import annotations

import uuid
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from contracts.database_events import FieldTypeName
from contracts.envelope import EnvelopeBase
from contracts.profile_events import GlobalStatus

OptIn = Literal["single", "double"]
How = Literal["api", "form", "import", "campaign"]
EvictionScope = Literal["resource_channel", "profile"]

_NAMESPACE = uuid.UUID("0d9c5a52-2f35-4f0b-9a39-5a8f8b1e6c21")


def resource_subject(resource_id: str) -> UUID:
    """The key of a resource's events: UUIDv5 of its id in our namespace."""
    return uuid.uuid5(_NAMESPACE, resource_id)


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelFieldSpec(_Data):
    """A custom channel field of a resource (typed as R3)."""

    name: str
    field_type: FieldTypeName
    options: tuple[str, ...] = ()


class ResourceData(_Data):
    """A resource's whole configuration, as created or after an update."""

    resource_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    channels: tuple[str, ...] = Field(description="email, sms, push, telegram, whatsapp, custom.")
    categories: tuple[str, ...] = ()
    custom_fields: tuple[ChannelFieldSpec, ...] = ()
    raise_priority: bool = Field(
        default=False, description="Increase priority for new subscriptions (R13)."
    )
    opt_in: OptIn = Field(default="single", description="Single or double opt-in (R9).")


class Consent(_Data):
    """How a consent change came about, for the ledger."""

    how: How
    ip: str | None = None
    detail: str | None = Field(default=None, max_length=200)


class SubscriptionAddedData(_Data):
    """A subscription joined the profile's list, with its decided priority (R10-R13)."""

    sub_id: UUID
    resource_id: str
    channel: str
    contact: str
    status: GlobalStatus
    priority: int = Field(ge=0)
    explicit_priority: bool
    reprioritised: dict[UUID, int] = Field(
        default_factory=dict, description="Existing subscriptions moved down (R13): new priority."
    )
    categories: dict[str, bool] = Field(default_factory=dict)
    fields: dict[str, JsonValue] = Field(default_factory=dict)
    custom: dict[str, JsonValue] = Field(default_factory=dict)
    consent: Consent


class SubscriptionEvictedData(_Data):
    """A subscription was replaced to make room under a limit (R14); it leaves the list."""

    sub_id: UUID
    resource_id: str | None = Field(default=None, description="For the timeline (R18).")
    channel: str | None = None
    scope: EvictionScope
    replaced_by: UUID


class SubscriptionStatusChangedData(_Data):
    """A subscription's status changed (R9, R11, R20)."""

    sub_id: UUID
    resource_id: str | None = Field(default=None, description="For the timeline (R18).")
    channel: str | None = None
    status: GlobalStatus
    consent: Consent


class SubscriptionPriorityChangedData(_Data):
    """A subscription's priority was set explicitly (R12)."""

    sub_id: UUID
    resource_id: str | None = Field(default=None, description="For the timeline (R18).")
    channel: str | None = None
    priority: int = Field(ge=0)


class SubscriptionCategoriesChangedData(_Data):
    """Categories of a subscription turned on or off (R16)."""

    sub_id: UUID
    resource_id: str | None = Field(default=None, description="For the timeline (R18).")
    channel: str | None = None
    categories: dict[str, bool]
    consent: Consent


class SubscriptionFieldsChangedData(_Data):
    """Standard (R17) or custom channel fields set (null unsets)."""

    sub_id: UUID
    resource_id: str | None = Field(default=None, description="For the timeline (R18).")
    channel: str | None = None
    fields: dict[str, JsonValue] = Field(default_factory=dict)
    custom: dict[str, JsonValue] = Field(default_factory=dict)


class SubscriptionDeletedData(_Data):
    """The subscription was deleted: it stays, soft-deleted, until a limit replaces it (R14)."""

    sub_id: UUID
    resource_id: str | None = Field(default=None, description="For the timeline (R18).")
    channel: str | None = None


class ResourceCreated(EnvelopeBase):
    """`resource.created`, current version."""

    type: Literal["resource.created"] = "resource.created"
    schema_version: Literal[1] = 1
    data: ResourceData


class ResourceUpdated(EnvelopeBase):
    """`resource.updated`, current version."""

    type: Literal["resource.updated"] = "resource.updated"
    schema_version: Literal[1] = 1
    data: ResourceData


class SubscriptionAdded(EnvelopeBase):
    """`subscription.added`, current version."""

    type: Literal["subscription.added"] = "subscription.added"
    schema_version: Literal[1] = 1
    data: SubscriptionAddedData


class SubscriptionEvicted(EnvelopeBase):
    """`subscription.evicted`, current version."""

    type: Literal["subscription.evicted"] = "subscription.evicted"
    schema_version: Literal[1] = 1
    data: SubscriptionEvictedData


class SubscriptionStatusChanged(EnvelopeBase):
    """`subscription.status_changed`, current version."""

    type: Literal["subscription.status_changed"] = "subscription.status_changed"
    schema_version: Literal[1] = 1
    data: SubscriptionStatusChangedData


class SubscriptionPriorityChanged(EnvelopeBase):
    """`subscription.priority_changed`, current version."""

    type: Literal["subscription.priority_changed"] = "subscription.priority_changed"
    schema_version: Literal[1] = 1
    data: SubscriptionPriorityChangedData


class SubscriptionCategoriesChanged(EnvelopeBase):
    """`subscription.categories_changed`, current version."""

    type: Literal["subscription.categories_changed"] = "subscription.categories_changed"
    schema_version: Literal[1] = 1
    data: SubscriptionCategoriesChangedData


class SubscriptionFieldsChanged(EnvelopeBase):
    """`subscription.fields_changed`, current version."""

    type: Literal["subscription.fields_changed"] = "subscription.fields_changed"
    schema_version: Literal[1] = 1
    data: SubscriptionFieldsChangedData


class SubscriptionDeleted(EnvelopeBase):
    """`subscription.deleted`, current version."""

    type: Literal["subscription.deleted"] = "subscription.deleted"
    schema_version: Literal[1] = 1
    data: SubscriptionDeletedData
