"""HTTP bodies of the v1 API (API.md); the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from contracts.database_events import FieldTypeName
from contracts.intake import PublicEvent
from contracts.profile_events import GlobalStatus
from contracts.text import StorableText

MAX_BATCH_ITEMS = 1000
DATABASE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateDatabaseRequest(_Body, StorableText):
    """A new database of profiles (R1)."""

    database_id: str = Field(pattern=DATABASE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)


class FieldSpec(_Body, StorableText):
    """A custom field (R3); `options` (Enum only) as a list or as one comma-separated line."""

    name: str = Field(min_length=1, max_length=63)
    type: FieldTypeName
    options: list[str] | str | None = None
    unique: bool = Field(default=False, description="Identifies profiles (Number, Line, IP).")


class StandardFieldView(_Body):
    """A standard field of every database (R2) and the tab it shows on."""

    name: str
    group: str
    type: str
    options: tuple[str, ...] = ()


class DatabaseView(_Body):
    """A database and its structure: custom fields in order, and the standard fields."""

    database_id: str
    name: str
    created_at: datetime
    fields: tuple[FieldSpec, ...]
    standard_fields: tuple[StandardFieldView, ...]


class ImportProfileRequest(_Body):
    """One profile to create or update (R3-R6, R21).

    It updates the profile its `profile_id` / `md5_id` / `xxh_id`, email, phones or unique custom
    fields identify; when they identify two different profiles it is a conflict (R6).
    """

    email: str | None = Field(default=None, max_length=254)
    phones: tuple[str, ...] = Field(default=(), max_length=20)
    fields: dict[str, JsonValue] = Field(default_factory=dict, description="Standard fields.")
    custom: dict[str, JsonValue] = Field(default_factory=dict, description="Custom fields.")
    status: GlobalStatus | None = Field(default=None, description="Global status to set (R7).")
    profile_id: UUID | None = None
    md5_id: str | None = Field(default=None, max_length=32)
    xxh_id: str | None = Field(default=None, max_length=16)
    geo: bool = Field(default=True, description="Locate `reg_ip` into reg_country/reg_city (R21).")
    mode: Literal["api", "manual", "push"] = Field(
        default="api",
        description="How the profile came: `manual` (a person in a UI), `push` (a push "
        "subscription), `api`. Recorded on the event for history (R18); files are `file`.",
    )


class ImportProfileResponse(_Body):
    """Where the import went; pass `consistency_token` as `Consistency-Token` to read it back."""

    profile_id: UUID
    created: bool
    suppressed: bool = Field(
        default=False, description="The email is on the suppression list: not sendable (R8)."
    )
    consistency_token: str


class BatchImportRequest(_Body):
    """Up to 1,000 profiles; one bad item does not reject the others."""

    items: list[ImportProfileRequest] = Field(max_length=MAX_BATCH_ITEMS)


class BatchItemResult(_Body):
    """The outcome of one item of a batch, by its position."""

    index: int
    outcome: Literal["created", "updated", "rejected"]
    profile_id: UUID | None = None
    suppressed: bool = False
    errors: tuple[FieldError, ...] = ()


class BatchImportResponse(_Body):
    """A result per item, counts, and a token covering every accepted item."""

    results: tuple[BatchItemResult, ...]
    created: int
    updated: int
    rejected: int
    consistency_token: str


class UpdateProfileRequest(_Body):
    """Functional updates of one profile; a null in `fields`/`custom` unsets that field."""

    fields: dict[str, JsonValue] = Field(default_factory=dict)
    custom: dict[str, JsonValue] = Field(default_factory=dict)
    increment: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Add to custom Number/Float fields: an integer for a Number, any finite "
        "number for a Float (checked against the field's type, R3).",
    )
    tags_add: dict[str, list[str]] = Field(default_factory=dict)
    tags_remove: dict[str, list[str]] = Field(default_factory=dict)
    email: str | None = Field(
        default=None, max_length=254, description="New email; an explicit null removes it."
    )
    phones_add: tuple[str, ...] = ()
    phones_remove: tuple[str, ...] = ()


class StatusRequest(_Body, StorableText):
    """A new global status (R7)."""

    status: GlobalStatus


class WriteResponse(_Body):
    """An accepted write; pass the token as `Consistency-Token` to read it back."""

    profile_id: UUID
    consistency_token: str


class ContactTab(_Body):
    """The identifying contacts (R6)."""

    email: str = Field(description="The email, or `<profile_id>@localhost` when there is none.")
    phones: tuple[str, ...]


class ProfileTabs(_Body):
    """A profile's values grouped as the reference's tabs (R2)."""

    main: dict[str, JsonValue]
    personal: dict[str, JsonValue]
    contact: ContactTab
    reg: dict[str, JsonValue]
    tracked: dict[str, JsonValue]
    additional: dict[str, JsonValue] = Field(description="Custom fields of the database.")


class ProfileView(_Body):
    """A profile as the read model holds it."""

    profile_id: UUID
    database_id: str
    md5_id: str
    xxh_id: str
    email: str = Field(description="The email, or `<profile_id>@localhost` when there is none.")
    phones: tuple[str, ...]
    fields: dict[str, JsonValue] = Field(description="Standard fields, flat.")
    custom: dict[str, JsonValue] = Field(description="Custom fields, flat.")
    tabs: ProfileTabs
    status: GlobalStatus
    import_mode: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class FieldError(_Body):
    """One broken rule in a request."""

    field: str
    rule: str
    value: JsonValue = None


class Problem(_Body):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: tuple[FieldError, ...] = ()


class RowError(_Body):
    """The errors of one row of a file import (rows count from 1, the header excluded)."""

    row: int
    errors: tuple[FieldError, ...]


class ImportJobView(_Body):
    """A file import job: where it stands, its counts and its per-row errors."""

    job_id: UUID
    database_id: str
    format: Literal["csv", "ndjson"]
    state: Literal["queued", "running", "done", "failed"]
    geo: bool
    total_bytes: int
    done_bytes: int
    progress: float = Field(description="Share of the file read, 0 to 1.")
    rows: int
    created: int
    updated: int
    rejected: int
    failure: str | None = None
    errors: tuple[RowError, ...] = Field(
        default=(), description="Per-row errors after `errors_after`, at most 1,000."
    )
    consistency_token: str = Field(
        description="Covers every row imported so far: a read carrying it sees them."
    )


class ChannelFieldBody(_Body):
    """A custom channel field of a resource (typed as R3)."""

    name: str = Field(min_length=1, max_length=63)
    type: FieldTypeName
    options: list[str] | str | None = None


class ResourceRequest(_Body, StorableText):
    """A resource: where subscriptions live (R10, R13, R16, R17, R9)."""

    resource_id: str = Field(pattern=DATABASE_ID_PATTERN)
    database_id: str = Field(pattern=DATABASE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    channels: list[str] = Field(
        min_length=1, description="email, sms, push, telegram, whatsapp, or custom names."
    )
    categories: list[str] = Field(default_factory=list)
    custom_fields: list[ChannelFieldBody] = Field(default_factory=list)
    raise_priority: bool = Field(
        default=False, description="Increase priority for new subscriptions (R13)."
    )
    opt_in: Literal["single", "double"] = "single"


class ResourcePatch(_Body, StorableText):
    """Changes to a resource; what is absent stays. Lists replace the old ones."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    channels: list[str] | None = Field(default=None, min_length=1)
    categories: list[str] | None = None
    custom_fields: list[ChannelFieldBody] | None = None
    raise_priority: bool | None = None
    opt_in: Literal["single", "double"] | None = None


class ResourceView(_Body):
    """A resource as configured."""

    resource_id: str
    database_id: str
    name: str
    channels: tuple[str, ...]
    categories: tuple[str, ...]
    custom_fields: tuple[ChannelFieldBody, ...]
    raise_priority: bool
    opt_in: Literal["single", "double"]


class SubscribeRequest(_Body):
    """A new subscription of the profile to a resource's channel (R10-R17)."""

    resource_id: str
    channel: str
    contact: str = Field(min_length=1, max_length=512)
    # not below 0 (R12): checked with the resource's rules, so a 422 names it with the others
    priority: int | None = Field(
        default=None, description="0 is the highest (R12).", json_schema_extra={"minimum": 0}
    )
    categories: dict[str, bool] | None = Field(
        default=None, description="Per category: subscribed or not; default: all subscribed."
    )
    fields: dict[str, JsonValue] = Field(default_factory=dict, description="R17 fields.")
    custom: dict[str, JsonValue] = Field(default_factory=dict)
    how: Literal["api", "form", "import"] = "api"
    ip: str | None = Field(default=None, max_length=45)


class SubscriptionPatch(_Body):
    """Changes to one subscription; each present part is its own event."""

    status: GlobalStatus | None = None
    priority: int | None = Field(default=None, json_schema_extra={"minimum": 0})  # as above
    categories: dict[str, bool] | None = None
    fields: dict[str, JsonValue] = Field(default_factory=dict)
    custom: dict[str, JsonValue] = Field(default_factory=dict)
    how: Literal["api", "form", "import"] = "api"
    ip: str | None = Field(default=None, max_length=45)


class LedgerEntry(_Body):
    """One consent-relevant change of a subscription (R9, R11, R16, R20)."""

    at: datetime
    change: str
    status: GlobalStatus | None = None
    categories: dict[str, bool] | None = None
    how: str | None = None
    ip: str | None = None
    detail: str | None = None


class SubscriptionView(_Body):
    """A subscription now, with its consent history."""

    sub_id: UUID
    resource_id: str
    channel: str
    contact: str
    status: GlobalStatus
    priority: int
    categories: dict[str, bool]
    fields: dict[str, JsonValue]
    custom: dict[str, JsonValue]
    deleted: bool
    created_at: datetime
    updated_at: datetime
    history: tuple[LedgerEntry, ...] = ()


class SubscriptionWriteResponse(_Body):
    """An accepted subscription change; the token reads it back."""

    sub_id: UUID
    evicted: UUID | None = Field(default=None, description="Replaced to make room (R14).")
    priority: int | None = None
    status: GlobalStatus | None = None
    consistency_token: str


class RecipientView(_Body):
    """Who a message would go to, or why nobody (R7, R12, R16)."""

    profile_id: UUID
    resource_id: str
    channel: str
    category: str | None = None
    sub_id: UUID | None = None
    contact: str | None = None
    priority: int | None = None
    reason: str | None = Field(
        default=None,
        description="global_status, no_subscription, no_sendable_subscription, "
        "category_unsubscribed, address_suppressed (R8), or profile_not_found.",
    )
    detail: str | None = None


class EventsRequest(_Body):
    """Events of the public contract (`contracts.intake.PublicEvent`), up to 1,000."""

    events: list[PublicEvent] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class EventResult(_Body):
    """What one posted event did."""

    index: int
    outcome: Literal["accepted", "rejected"]
    profile_id: UUID | None = None
    subscription_status: GlobalStatus | None = Field(
        default=None, description="What a campaign action set its subscription to (R9, R20)."
    )
    errors: tuple[FieldError, ...] = ()


class EventsResponse(_Body):
    """A result per event and a token covering the applied ones."""

    results: tuple[EventResult, ...]
    consistency_token: str


class HistoryEntry(_Body):
    """One line of a profile's timeline (R18)."""

    event_id: UUID
    at: datetime
    kind: str = Field(
        description="import, profile, status, subscription, eviction, campaign, "
        "unsub, pixel, promo, segment, trigger, scenario, order, relation, form"
    )
    type: str = Field(description="The canonical event type, e.g. campaign.opened.")
    summary: dict[str, JsonValue]


class HistoryPage(_Body):
    """A page of the timeline, newest first; pass `cursor` back for the next one."""

    profile_id: UUID
    since: datetime
    until: datetime
    entries: tuple[HistoryEntry, ...]
    cursor: str | None = Field(default=None, description="Opaque; null on the last page.")
