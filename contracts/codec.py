"""Wire encoding of canonical events: JSON (CloudEvents structured mode) in, typed events out."""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from pydantic import Field, TypeAdapter, ValidationError

from contracts.activity_events import (
    ACTIVITY_EVENTS,
    CampaignClicked,
    CampaignComplained,
    CampaignConfirmationClicked,
    CampaignDelivered,
    CampaignHardBounced,
    CampaignOpened,
    CampaignRead,
    CampaignSent,
    CampaignUnsubscribeClicked,
    FormSubmitted,
    OrderRecorded,
    PixelHit,
    PromoCodeActivated,
    PromoCodeAttached,
    PromoCodeDetached,
    RelationAdded,
    RelationRemoved,
    ScenarioEntered,
    ScenarioFinished,
    SegmentEntered,
    SegmentExited,
    TriggerSent,
)
from contracts.database_events import DatabaseCreated, FieldAdded, FieldRemoved
from contracts.encoded import MAX_EVENT_BYTES, EncodedEvent, EventTooLargeError, ce_headers
from contracts.profile_events import (
    ProfileDeleted,
    ProfileImported,
    ProfileStatusChanged,
    ProfileUpdated,
)
from contracts.subscription_events import (
    ResourceCreated,
    ResourceUpdated,
    SubscriptionAdded,
    SubscriptionCategoriesChanged,
    SubscriptionDeleted,
    SubscriptionEvicted,
    SubscriptionFieldsChanged,
    SubscriptionPriorityChanged,
    SubscriptionStatusChanged,
)
from contracts.upcast import upcast

Event = Annotated[
    ProfileImported
    | ProfileUpdated
    | ProfileStatusChanged
    | ProfileDeleted
    | DatabaseCreated
    | FieldAdded
    | FieldRemoved
    | ResourceCreated
    | ResourceUpdated
    | SubscriptionAdded
    | SubscriptionEvicted
    | SubscriptionStatusChanged
    | SubscriptionPriorityChanged
    | SubscriptionCategoriesChanged
    | SubscriptionFieldsChanged
    | SubscriptionDeleted
    | CampaignSent
    | CampaignDelivered
    | CampaignOpened
    | CampaignRead
    | CampaignClicked
    | CampaignConfirmationClicked
    | CampaignHardBounced
    | CampaignComplained
    | CampaignUnsubscribeClicked
    | PixelHit
    | PromoCodeAttached
    | PromoCodeDetached
    | PromoCodeActivated
    | SegmentEntered
    | SegmentExited
    | TriggerSent
    | ScenarioEntered
    | ScenarioFinished
    | OrderRecorded
    | RelationAdded
    | RelationRemoved
    | FormSubmitted,
    Field(discriminator="type"),
]

EVENT_CLASSES: Final = (
    ProfileImported,
    ProfileUpdated,
    ProfileStatusChanged,
    ProfileDeleted,
    DatabaseCreated,
    FieldAdded,
    FieldRemoved,
    ResourceCreated,
    ResourceUpdated,
    SubscriptionAdded,
    SubscriptionEvicted,
    SubscriptionStatusChanged,
    SubscriptionPriorityChanged,
    SubscriptionCategoriesChanged,
    SubscriptionFieldsChanged,
    SubscriptionDeleted,
    *ACTIVITY_EVENTS,
)
CURRENT_VERSIONS: Final[dict[str, int]] = {
    cls.model_fields["type"].default: cls.model_fields["schema_version"].default
    for cls in EVENT_CLASSES
}

_ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Event)


class DecodeError(ValueError):
    """A message that is not a valid canonical event; `reason` says why, without its content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode(event: Event) -> bytes:
    """The JSON bytes of `event` as published on the log."""
    return event.model_dump_json().encode()


def as_encoded(event: Event | EncodedEvent) -> EncodedEvent:
    """The event as the log stores it (an already encoded one as it is); EventTooLargeError
    for one no log may take (MAX_EVENT_BYTES)."""
    if not isinstance(event, EncodedEvent):
        event = EncodedEvent(
            event.id, event.subject, event.type, event.schema_version, encode(event)
        )
    if len(event.value) > MAX_EVENT_BYTES:
        raise EventTooLargeError(event.type, len(event.value))
    return event


def decode(raw: bytes) -> Event:
    """Parse, upcast and validate one message; raise DecodeError naming what is wrong."""
    try:  # fast path: a current-version event validates straight from bytes, in Rust
        return _ADAPTER.validate_json(raw)
    except ValidationError:
        return _decode_slowly(raw)


def _decode_slowly(raw: bytes) -> Event:
    """Old versions (upcast) and bad input (a reason naming what is wrong)."""
    try:
        document: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(
            f"not JSON: {exc.__class__.__name__} at position {_position(exc)}"
        ) from None
    if not isinstance(document, dict):
        raise DecodeError("not a JSON object")
    event_type, version = document.get("type"), document.get("schema_version")
    if event_type not in CURRENT_VERSIONS:
        raise DecodeError(f"unknown event type {event_type!r}")
    if not isinstance(version, int) or not 1 <= version <= CURRENT_VERSIONS[event_type]:
        raise DecodeError(f"unsupported schema_version {version!r} for {event_type}")
    try:
        return _ADAPTER.validate_python(upcast(document, CURRENT_VERSIONS))
    except ValidationError as exc:
        raise DecodeError(_describe(exc)) from None


def headers(event: Event) -> list[tuple[str, bytes]]:
    """CloudEvents binary-mode hints for routing without parsing; never personal data."""
    return ce_headers(event.id, event.type, event.schema_version)


def _position(exc: Exception) -> int:
    return getattr(exc, "pos", getattr(exc, "start", -1))


def _describe(exc: ValidationError) -> str:
    # Only locations and error types: input values may be personal data.
    parts = [f"{'.'.join(str(p) for p in err['loc'])}: {err['type']}" for err in exc.errors()]
    return "invalid event: " + "; ".join(parts[:10])
