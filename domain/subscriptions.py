"""Subscriptions (R7, R9-R17): the 200/20 limits, the eviction order, priorities, who receives.

Limits (R14): at most PROFILE_LIMIT subscriptions per profile and CHANNEL_LIMIT per (resource,
channel), soft-deleted ones included. A new one beyond a limit replaces a victim chosen within
the scope of the limit that was hit: deleted first; then invalid, hard_bounced, complainer,
suspended, unconfirmed; then the lowest priority (largest number); then the oldest.
Priorities (R12, R13): 0 is the highest; a new one without an explicit priority gets 0 and
pushes the others of its (resource, channel) down by one when the resource says so, else it
goes last (largest + 1, or 0).
Who receives (R7, R12, R16): only a non-deleted subscription whose status and the profile's
global status are both `subscribed` (and subscribed to the message's category, if any); of
those the highest priority, ties to the newest. Campaign actions move a status (R9, R20).
Contacts and standard channel fields (R17) are checked and put in canonical form here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal
from uuid import UUID

from pydantic import JsonValue

from contracts import GlobalStatus
from domain.errors import ValidationError, Violation
from domain.fields import FieldDef, coerce
from domain.identity import normalise_email, normalise_phone

STANDARD_CHANNELS: tuple[str, ...] = ("email", "sms", "push", "telegram", "whatsapp")
PROFILE_LIMIT = 200
CHANNEL_LIMIT = 20
Scope = Literal["resource_channel", "profile"]
CampaignAction = Literal["confirmation_click", "hard_bounce", "complaint", "unsubscribe_click"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_STATUS_RANK = MappingProxyType(
    {"invalid": 0, "hard_bounced": 1, "complainer": 2, "suspended": 3, "unconfirmed": 4}
)
_CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Subscription:
    """One (resource, channel, contact) of a profile, with its state."""

    sub_id: UUID
    resource_id: str
    channel: str
    contact: str
    status: GlobalStatus
    priority: int
    created_at: datetime
    categories: Mapping[str, bool] = field(default_factory=lambda: _EMPTY)
    fields: Mapping[str, JsonValue] = field(default_factory=lambda: _EMPTY)
    custom: Mapping[str, JsonValue] = field(default_factory=lambda: _EMPTY)
    deleted: bool = False

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Subscription:
        """A subscription from a mapping holding every one of its fields (a fold's draft, a
        stored row; other keys are ignored, a missing one is a KeyError).

        Skips the frozen `__init__`, which sets each of the eleven fields through
        `object.__setattr__`: a replay freezes a subscription for every one an event touched
        (R13 moves up to 19 others per add), and that call was its largest single cost.
        """
        made = object.__new__(cls)
        made.__dict__.update({name: values[name] for name in _FIELD_NAMES})
        return made


_FIELD_NAMES = tuple(f.name for f in fields(Subscription))


@dataclass(frozen=True)
class Placement:
    """Where a new subscription goes: its priority, who moves, who leaves."""

    priority: int
    reprioritised: Mapping[UUID, int]
    victim: Subscription | None
    scope: Scope | None


def eviction_key(sub: Subscription) -> tuple[int, int, int, datetime, UUID]:
    """Sort key of R14: the smallest is replaced first."""
    return (
        0 if sub.deleted else 1,
        _STATUS_RANK.get(sub.status, len(_STATUS_RANK)),
        -sub.priority,
        sub.created_at,
        sub.sub_id,
    )


def choose_victim(candidates: Sequence[Subscription]) -> Subscription:
    """The subscription R14 replaces first among `candidates`."""
    if not candidates:
        raise ValueError("no candidates to replace")
    return min(candidates, key=eviction_key)


def place(
    existing: Sequence[Subscription],
    resource_id: str,
    channel: str,
    *,
    priority: int | None,
    raise_priority: bool,
) -> Placement:
    """Decide how a new subscription of (resource_id, channel) joins the list (R12-R14)."""
    if priority is not None and priority < 0:
        raise ValidationError([Violation("priority", "priority_negative", priority)])
    same = [s for s in existing if (s.resource_id, s.channel) == (resource_id, channel)]
    victim: Subscription | None = None
    scope: Scope | None = None
    if len(same) >= CHANNEL_LIMIT:
        victim, scope = choose_victim(same), "resource_channel"
    elif len(existing) >= PROFILE_LIMIT:
        victim, scope = choose_victim(existing), "profile"
    peers = [s for s in same if not s.deleted and s is not victim]
    if priority is not None:
        return Placement(priority, MappingProxyType({}), victim, scope)
    if raise_priority:
        moved = MappingProxyType({s.sub_id: s.priority + 1 for s in peers})
        return Placement(0, moved, victim, scope)
    last = max((s.priority for s in peers), default=-1)
    return Placement(last + 1, MappingProxyType({}), victim, scope)


def sendable(global_status: str, sub: Subscription, category: str | None) -> bool:
    """May a message go to this subscription (R7, R16)?"""
    return (
        global_status == "subscribed"
        and sub.status == "subscribed"
        and not sub.deleted
        and (category is None or sub.categories.get(category) is True)
    )


@dataclass(frozen=True)
class NoRecipient:
    """Why no subscription receives the message."""

    reason: Literal[
        "global_status",
        "no_subscription",
        "no_sendable_subscription",
        "category_unsubscribed",
        "address_suppressed",
    ]
    detail: str


def recipient(
    global_status: str,
    subs: Sequence[Subscription],
    resource_id: str,
    channel: str,
    category: str | None,
    suppressed: Collection[str] = (),
) -> Subscription | NoRecipient:
    """The subscription a message of the resource and channel goes to (R7, R12, R16); an email
    address on the suppression list (`suppressed`) is never one (R8), whatever its status."""
    if global_status != "subscribed":
        return NoRecipient("global_status", f"the profile is {global_status}")
    own = [
        s for s in subs if (s.resource_id, s.channel) == (resource_id, channel) and not s.deleted
    ]
    if not own:
        return NoRecipient("no_subscription", f"no subscription to {resource_id}/{channel}")
    ready = [s for s in own if sendable(global_status, s, category)]
    allowed = [s for s in ready if not (s.channel == "email" and s.contact in suppressed)]
    if ready and not allowed:
        return NoRecipient("address_suppressed", "every sendable address is suppressed (R8)")
    ready = allowed
    if not ready:
        if category is not None and any(sendable(global_status, s, None) for s in own):
            return NoRecipient("category_unsubscribed", f"not subscribed to {category}")
        return NoRecipient("no_sendable_subscription", "no subscription is subscribed")
    return min(ready, key=lambda s: (s.priority, -s.created_at.timestamp(), s.sub_id))


def addressed(
    subs: Sequence[Subscription], resource_id: str, channel: str, action: CampaignAction
) -> Subscription | None:
    """The subscription a campaign message of the resource and channel went to, when the action
    names only those (R20: only that subscription moves): the one a message goes to (R12: the
    highest priority, ties to the newest) among the subscribed ones, or among the unconfirmed
    ones for a confirmation click (R9: that message went to an unconfirmed subscription)."""
    wanted = "unconfirmed" if action == "confirmation_click" else "subscribed"
    candidates = [
        s
        for s in subs
        if not s.deleted
        and (s.resource_id, s.channel) == (resource_id, channel)
        and s.status == wanted
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda s: (s.priority, -s.created_at.timestamp(), s.sub_id))


def status_after(current: GlobalStatus, action: CampaignAction) -> GlobalStatus | None:
    """A subscription's status after a campaign action (R9, R20); None when unchanged."""
    target: GlobalStatus | None
    if action == "confirmation_click":
        target = "subscribed" if current == "unconfirmed" else None
    elif action == "hard_bounce":
        target = "hard_bounced"
    elif action == "complaint":
        target = "complainer"
    else:
        target = "unsubscribed"
    return None if target == current else target


def initial_status(opt_in: Literal["single", "double"]) -> GlobalStatus:
    """R9: double opt-in waits for the confirmation click."""
    return "unconfirmed" if opt_in == "double" else "subscribed"


def _enum(name: str, options: str) -> FieldDef:
    return FieldDef(name, "enum", tuple(options.split(",")))


CHANNEL_FIELDS: Mapping[str, FieldDef] = MappingProxyType(
    {
        "device_type": _enum("device_type", "desktop,mobile,other"),
        "device_model": FieldDef("device_model", "line"),
        "device_name": FieldDef("device_name", "line"),
        "platform": _enum("platform", "windows,linux,mac,opera,ios,blackberry,android"),
        "platform_version": FieldDef("platform_version", "line"),
        "platform_time_zone": FieldDef("platform_time_zone", "line"),
        "platform_language": FieldDef("platform_language", "line"),
        "ad_tracking_allowed": FieldDef("ad_tracking_allowed", "boolean"),
        "ad_identifier": FieldDef("ad_identifier", "line"),
        "application_id": FieldDef("application_id", "line"),
        "application_installation_id": FieldDef("application_installation_id", "line"),
        "browser": _enum(
            "browser",
            "bots,internet_explorer,firefox,safari,facebook,chrome,opera,outlook,thunderbird",
        ),
        "application_version": FieldDef("application_version", "line"),
        "browser_version": FieldDef("browser_version", "line"),
    }
)


def validate_channel_fields(values: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """The standard channel fields (R17) in canonical form; every error at once."""
    return _validate("fields", CHANNEL_FIELDS, values)


def validate_custom_channel_fields(
    defs: Mapping[str, FieldDef], values: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """A resource's custom channel fields (typed as R3); every error at once."""
    return _validate("custom", defs, values)


def _validate(
    prefix: str, defs: Mapping[str, FieldDef], values: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {}
    violations: list[Violation] = []
    for name, value in values.items():
        definition = defs.get(name)
        if definition is None:
            violations.append(Violation(f"{prefix}.{name}", "unknown_field", name))
            continue
        try:
            out[name] = coerce(definition, value)
        except ValidationError as error:
            violations += [Violation(f"{prefix}.{name}", v.rule, v.value) for v in error.violations]
    if violations:
        raise ValidationError(violations)
    return out


def normalise_contact(channel: str, raw: str) -> str:
    """The contact in canonical form for its channel: email, E.164 phone, or a trimmed token."""
    try:
        if channel == "email":
            return normalise_email(raw)
        if channel in ("sms", "whatsapp"):
            return normalise_phone(raw)
    except ValidationError as error:
        raise ValidationError(
            [Violation("contact", v.rule, v.value) for v in error.violations]
        ) from None
    contact = raw.strip()
    if not contact or len(contact) > 512 or _CONTROL.search(contact):
        raise ValidationError([Violation("contact", "contact_syntax", raw)])
    return contact


def check_channel_name(name: str) -> None:
    """A custom channel's name: lower-case letters, digits and `_`, starting with a letter.

    A standard channel's name is refused: a custom channel may not pass for one (R10).
    """
    if not _CHANNEL_NAME.fullmatch(name) or name in STANDARD_CHANNELS:
        raise ValidationError([Violation("channel", "channel_name_syntax", name)])


def check_categories(names: Sequence[str]) -> tuple[str, ...]:
    """Category names, checked and deduplicated in order (R16)."""
    bad = [n for n in names if not _CATEGORY.fullmatch(n)]
    if bad:
        raise ValidationError([Violation("categories", "category_syntax", n) for n in bad])
    return tuple(dict.fromkeys(names))
