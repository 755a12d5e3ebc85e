"""Subscription commands at intake (R9-R17, R20): decide under the profile's lock, then append.

Every command on one profile takes the lock on its row of `ingest.subscription_lists`, decides
with the pure rules of `domain.subscriptions` (priorities, the 200/20 limits and the eviction
order), stores the new list, and appends the events while still holding the lock, so the log
order of a profile's subscription events is the order they were decided in.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import JsonValue

from contracts import (
    Consent,
    Event,
    GlobalStatus,
    SubscriptionAdded,
    SubscriptionAddedData,
    SubscriptionCategoriesChanged,
    SubscriptionCategoriesChangedData,
    SubscriptionDeleted,
    SubscriptionDeletedData,
    SubscriptionEvicted,
    SubscriptionEvictedData,
    SubscriptionFieldsChanged,
    SubscriptionFieldsChangedData,
    SubscriptionPriorityChanged,
    SubscriptionPriorityChangedData,
    SubscriptionStatusChanged,
    SubscriptionStatusChangedData,
)
from domain.errors import DomainError, ValidationError, Violation, collect
from domain.resources import Resource
from domain.subscription_list import fold
from domain.subscriptions import (
    CampaignAction,
    Subscription,
    addressed,
    initial_status,
    normalise_contact,
    place,
    status_after,
    validate_channel_fields,
    validate_custom_channel_fields,
)
from services import identity, resources
from services.event_ids import new_id
from services.eventlog.port import EventLog, Position, Staged

SOURCE = "/v1/subscriptions"


class NotFoundError(DomainError):
    """The profile or the subscription does not exist."""


class ExistsError(DomainError):
    """An active subscription of that (resource, channel, contact) exists already."""

    def __init__(self, sub_id: UUID) -> None:
        super().__init__(str(sub_id))
        self.sub_id = sub_id


@dataclass(frozen=True)
class NewSubscription:
    """What a client asks for."""

    resource_id: str
    channel: str
    contact: str
    priority: int | None = None
    categories: dict[str, bool] | None = None
    fields: dict[str, JsonValue] | None = None
    custom: dict[str, JsonValue] | None = None
    consent: Consent = field(default_factory=lambda: Consent(how="api"))


@dataclass(frozen=True)
class Change:
    """Changes to one subscription."""

    status: GlobalStatus | None = None
    priority: int | None = None
    categories: dict[str, bool] | None = None
    fields: dict[str, JsonValue] | None = None
    custom: dict[str, JsonValue] | None = None
    consent: Consent = field(default_factory=lambda: Consent(how="api"))


@dataclass(frozen=True)
class Reaction:
    """A campaign action for a profile: on the subscription it went to (`sub_id`), or on where it
    was sent (`resource_id` and `channel`), or naming neither (history only, R8 for a bounce)."""

    profile_id: UUID
    action: CampaignAction
    detail: str
    sub_id: UUID | None = None
    resource_id: str | None = None
    channel: str | None = None
    ip: str | None = None  # where the click came from, for the consent ledger


@dataclass(frozen=True)
class Outcome:
    """A decided command: the events appended and where."""

    sub_id: UUID
    events: list[Event]
    positions: list[Position]
    evicted: UUID | None = None
    priority: int | None = None
    status: GlobalStatus | None = None


@dataclass(frozen=True)
class Subscriptions:
    """The subscription commands, over a pool and the event log."""

    pool: asyncpg.Pool
    log: EventLog

    async def add(self, profile_id: UUID, new: NewSubscription) -> Outcome:
        """Subscribe; an eviction makes room when a limit is hit (R14)."""
        async with self.pool.acquire() as conn, conn.transaction():
            database_id = await _database(conn, profile_id)
            resource = await resources.load(conn, new.resource_id)
            contact, fields, custom, categories = _checked(resource, database_id, new)
            assert resource is not None
            subs = await _lock(conn, profile_id)
            for s in subs:
                if (s.resource_id, s.channel, s.contact, s.deleted) == (
                    new.resource_id,
                    new.channel,
                    contact,
                    False,
                ):
                    raise ExistsError(s.sub_id)
            status = initial_status(resource.opt_in)
            if new.channel == "email" and await identity.suppressed(conn, [contact]):
                status = "hard_bounced"  # R8: a suppressed address is never sendable
            placement = place(
                subs,
                new.resource_id,
                new.channel,
                priority=new.priority,
                raise_priority=resource.raise_priority,
            )
            sub_id, now = new_id(), datetime.now(UTC)
            events: list[Event] = []
            if placement.victim is not None:
                assert placement.scope is not None
                evicted = SubscriptionEvictedData(
                    sub_id=placement.victim.sub_id,
                    resource_id=placement.victim.resource_id,
                    channel=placement.victim.channel,
                    scope=placement.scope,
                    replaced_by=sub_id,
                )
                events.append(
                    SubscriptionEvicted(**_env(profile_id, database_id, now), data=evicted)
                )
            added = SubscriptionAddedData(
                sub_id=sub_id,
                resource_id=new.resource_id,
                channel=new.channel,
                contact=contact,
                status=status,
                priority=placement.priority,
                explicit_priority=new.priority is not None,
                reprioritised=dict(placement.reprioritised),
                categories=categories,
                fields=fields,
                custom=custom,
                consent=new.consent,
            )
            events.append(SubscriptionAdded(**_env(profile_id, database_id, now), data=added))
            staged = await self._commit(conn, profile_id, subs, events)
        positions = await self.log.publish(staged)
        victim = placement.victim.sub_id if placement.victim else None
        return Outcome(sub_id, events, positions, victim, placement.priority, status)

    async def add_rules(self, profile_id: UUID, new: NewSubscription) -> list[Violation]:
        """The rules `add` finds `new` breaking, read without a lock and writing nothing; none
        when there is no such profile (its 404 is for a request of the right shape)."""
        async with self.pool.acquire() as conn:
            database_id = await identity.profile_database(conn, profile_id)
            resource = await resources.load(conn, new.resource_id)
        broken: list[Violation] = []
        if database_id is not None:
            collect(broken, lambda: _checked(resource, database_id, new), None)
        return broken

    async def change_rules(self, profile_id: UUID, sub_id: UUID, change: Change) -> list[Violation]:
        """The rules `change` finds `change` breaking, read without a lock and writing nothing;
        none when there is no such profile or subscription (as `add_rules`)."""
        async with self.pool.acquire() as conn:
            if await identity.profile_database(conn, profile_id) is None:
                return []
            stored = await conn.fetchval(
                "SELECT subscriptions FROM ingest.subscription_lists WHERE profile_id = $1",
                profile_id,
            )
            found = [s for s in map(_subscription, stored or []) if s.sub_id == sub_id]
            if not found:
                return []
            resource = await resources.load(conn, found[0].resource_id)
        broken: list[Violation] = []
        collect(broken, lambda: _checked_change(resource, change), None)
        return broken

    async def change(self, profile_id: UUID, sub_id: UUID, change: Change) -> Outcome:
        """Change status, priority, categories or fields: an event per part present."""
        async with self._locked(profile_id, sub_id) as (conn, database_id, subs, sub):
            resource = await resources.load(conn, sub.resource_id)
            now = datetime.now(UTC)
            events = _changes(resource, sub, change, lambda: _env(profile_id, database_id, now))
            staged = await self._commit(conn, profile_id, subs, events) if events else Staged()
        positions = await self.log.publish(staged)
        return Outcome(sub_id, events, positions, status=change.status)

    async def delete(self, profile_id: UUID, sub_id: UUID) -> Outcome:
        """Soft-delete: the subscription stays in the list until a limit replaces it (R14)."""
        async with self._locked(profile_id, sub_id) as (conn, database_id, subs, sub):
            if sub.deleted:
                return Outcome(sub_id, [], [])
            event = SubscriptionDeleted(
                **_env(profile_id, database_id, datetime.now(UTC)),
                data=SubscriptionDeletedData(
                    sub_id=sub_id, resource_id=sub.resource_id, channel=sub.channel
                ),
            )
            staged = await self._commit(conn, profile_id, subs, [event])
        positions = await self.log.publish(staged)
        return Outcome(sub_id, [event], positions)

    async def react_many(
        self, reactions: Sequence[Reaction]
    ) -> tuple[list[list[Outcome]], list[Position]]:
        """Campaign actions of a batch in one transaction (R8, R9, R20): what each moved.

        Each profile's list is locked once (in profile id order, so two batches never wait on
        each other in a circle), the actions are decided in order against the lists as they
        change, and every event is appended in that order. An action on a subscription or
        profile that does not exist moves nothing; it stays in the history.
        """
        if not reactions:
            return [], []
        profiles = sorted({r.profile_id for r in reactions})
        moved: list[list[tuple[UUID, SubscriptionStatusChanged]]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            databases = await identity.profile_databases(conn, profiles)
            lists = await _lock_many(conn, [p for p in profiles if p in databases])
            changed: set[UUID] = set()
            bounced: list[tuple[str, UUID | None]] = []  # addresses for the list (R8)
            unlisted: list[UUID] = []  # profiles whose email bounced outside any list (R8)
            for r in reactions:
                database_id = databases.get(r.profile_id)
                subs = lists.get(r.profile_id, [])
                targets = _targets(subs, r) if database_id is not None else []
                if database_id is not None and _bounce_without_list(r, targets):
                    unlisted.append(r.profile_id)
                done: list[tuple[UUID, SubscriptionStatusChanged]] = []
                for sub in targets:
                    assert database_id is not None
                    if r.action == "hard_bounce" and sub.channel == "email":
                        bounced.append((sub.contact, r.profile_id))
                    event = _reaction(database_id, sub, r)
                    if event is not None:
                        done.append((sub.sub_id, event))
                if done:
                    lists[r.profile_id] = list(fold(subs, [e for _, e in done]).subscriptions)
                    changed.add(r.profile_id)
                moved.append(done)
            if bounced:  # one statement for the batch, not one per bounce
                await identity.suppress_addresses(conn, bounced)
            if unlisted:
                await identity.suppress(conn, unlisted)
            if changed:
                await conn.executemany(
                    "UPDATE ingest.subscription_lists SET subscriptions = $2 WHERE profile_id = $1",
                    [(p, [_plain(s) for s in lists[p]]) for p in sorted(changed)],
                )
            events: list[Event] = [e for done in moved for _, e in done]
            staged = await self.log.stage(conn, events)
        positions = await self.log.publish(staged)
        where = {e.id: [at] for e, at in zip(events, positions, strict=True)}
        outcomes = [
            [Outcome(sub_id, [e], where[e.id], status=e.data.status) for sub_id, e in done]
            for done in moved
        ]
        return outcomes, positions

    @contextlib.asynccontextmanager
    async def _locked(
        self, profile_id: UUID, sub_id: UUID
    ) -> AsyncIterator[tuple[asyncpg.Connection, str, list[Subscription], Subscription]]:
        """A transaction holding the profile's list lock, with the subscription it is about."""
        async with self.pool.acquire() as conn, conn.transaction():
            database_id = await _database(conn, profile_id)
            subs = await _lock(conn, profile_id)
            yield conn, database_id, subs, _find(subs, sub_id)

    async def _commit(
        self,
        conn: asyncpg.Connection,
        profile_id: UUID,
        subs: Sequence[Subscription],
        events: list[Event],
    ) -> Staged:
        after = fold(subs, events).subscriptions
        await conn.execute(
            "UPDATE ingest.subscription_lists SET subscriptions = $2 WHERE profile_id = $1",
            profile_id,
            [_plain(s) for s in after],
        )
        # still under the row lock: the log gets this profile's events in decision order, and
        # they commit or roll back with the list (the PostgreSQL log joins this transaction,
        # Kafka's outbox row is written in it)
        return await self.log.stage(conn, events)


def _checked(
    resource: Resource | None, database_id: str, new: NewSubscription
) -> tuple[str, dict[str, JsonValue], dict[str, JsonValue], dict[str, bool]]:
    if resource is None or resource.database_id != database_id:
        rule = "unknown_resource" if resource is None else "resource_of_another_database"
        raise ValidationError([Violation("resource_id", rule, new.resource_id)])
    violations: list[Violation] = _priority(new.priority)
    contact = ""
    if new.channel not in resource.channels:
        violations.append(Violation("channel", "unknown_channel", new.channel))
    else:
        contact = collect(violations, lambda: normalise_contact(new.channel, new.contact), "")
    fields: dict[str, JsonValue] = collect(
        violations, lambda: validate_channel_fields(new.fields or {}), {}
    )
    custom: dict[str, JsonValue] = collect(
        violations,
        lambda: validate_custom_channel_fields(resource.custom_fields, new.custom or {}),
        {},
    )
    categories = _categories(resource, new.categories, violations)
    if violations:
        raise ValidationError(violations)
    return contact, fields, custom, categories


def _priority(priority: int | None) -> list[Violation]:
    """R12: 0 is the highest priority; there is none above it."""
    return [] if priority is None or priority >= 0 else [Violation("priority", "min_0", priority)]


def _categories(
    resource: Resource, given: dict[str, bool] | None, violations: list[Violation]
) -> dict[str, bool]:
    if given is None:
        return dict.fromkeys(resource.categories, True)  # a new subscriber gets every category
    unknown = [c for c in given if c not in resource.categories]
    violations += [Violation(f"categories.{c}", "unknown_category", c) for c in unknown]
    return {**dict.fromkeys(resource.categories, True), **given}


def _changes(
    resource: Resource | None,
    sub: Subscription,
    change: Change,
    envelope: Callable[[], dict[str, Any]],
) -> list[Event]:
    """An event per part of the change, each with an envelope of its own (its own id: a log
    keeps one event per id)."""
    fields, custom = _checked_change(resource, change)
    events: list[Event] = []
    where = {"resource_id": sub.resource_id, "channel": sub.channel}  # for the timeline (R18)
    if change.status is not None and change.status != sub.status:
        data = SubscriptionStatusChangedData(
            sub_id=sub.sub_id, status=change.status, consent=change.consent, **where
        )
        events.append(SubscriptionStatusChanged(**envelope(), data=data))
    if change.priority is not None and change.priority != sub.priority:
        data_p = SubscriptionPriorityChangedData(
            sub_id=sub.sub_id, priority=change.priority, **where
        )
        events.append(SubscriptionPriorityChanged(**envelope(), data=data_p))
    if change.categories:
        data_c = SubscriptionCategoriesChangedData(
            sub_id=sub.sub_id, categories=change.categories, consent=change.consent, **where
        )
        events.append(SubscriptionCategoriesChanged(**envelope(), data=data_c))
    if fields or custom:
        data_f = SubscriptionFieldsChangedData(
            sub_id=sub.sub_id, fields=fields, custom=custom, **where
        )
        events.append(SubscriptionFieldsChanged(**envelope(), data=data_f))
    return events


def _checked_change(
    resource: Resource | None, change: Change
) -> tuple[dict[str, JsonValue], dict[str, JsonValue]]:
    """The change's channel fields and custom fields in canonical form; ValidationError listing
    every rule it breaks."""
    violations: list[Violation] = _priority(change.priority)
    if change.categories is not None and resource is not None:
        unknown = [c for c in change.categories if c not in resource.categories]
        violations += [Violation(f"categories.{c}", "unknown_category", c) for c in unknown]
    fields: dict[str, JsonValue] = collect(
        violations, lambda: validate_channel_fields(change.fields or {}), {}
    )
    defs = resource.custom_fields if resource is not None else MappingProxyType({})
    custom: dict[str, JsonValue] = collect(
        violations, lambda: validate_custom_channel_fields(defs, change.custom or {}), {}
    )
    if violations:
        raise ValidationError(violations)
    return fields, custom


async def _database(conn: asyncpg.Connection, profile_id: UUID) -> str:
    database_id = await identity.profile_database(conn, profile_id)
    if database_id is None:
        raise NotFoundError(f"profile {profile_id}")
    return database_id


async def _lock(conn: asyncpg.Connection, profile_id: UUID) -> list[Subscription]:
    await conn.execute(
        "INSERT INTO ingest.subscription_lists (profile_id) VALUES ($1) ON CONFLICT DO NOTHING",
        profile_id,
    )
    stored = await conn.fetchval(
        "SELECT subscriptions FROM ingest.subscription_lists WHERE profile_id = $1 FOR UPDATE",
        profile_id,
    )
    return [_subscription(s) for s in stored]


async def _lock_many(
    conn: asyncpg.Connection, profiles: Sequence[UUID]
) -> dict[UUID, list[Subscription]]:
    """Lock the lists of `profiles` (sorted) in that order and return them."""
    await conn.execute(
        "INSERT INTO ingest.subscription_lists (profile_id) SELECT unnest($1::uuid[]) "
        "ON CONFLICT DO NOTHING",
        list(profiles),
    )
    rows = await conn.fetch(
        "SELECT profile_id, subscriptions FROM ingest.subscription_lists "
        "WHERE profile_id = ANY($1::uuid[]) ORDER BY profile_id FOR UPDATE",
        list(profiles),
    )
    return {r["profile_id"]: [_subscription(s) for s in r["subscriptions"]] for r in rows}


def _targets(subs: Sequence[Subscription], r: Reaction) -> list[Subscription]:
    """The subscription an action is about: the one named, or the one its message went to."""
    if r.sub_id is not None:
        return [s for s in subs if s.sub_id == r.sub_id]
    if r.resource_id is None or r.channel is None:
        return []
    found = addressed(subs, r.resource_id, r.channel, r.action)
    return [] if found is None else [found]


def _bounce_without_list(r: Reaction, targets: Sequence[Subscription]) -> bool:
    """A hard bounce of an email that names no subscription and finds none where it went."""
    return (
        r.action == "hard_bounce"
        and r.sub_id is None
        and not targets
        and r.channel in (None, "email")
    )


def _reaction(database_id: str, sub: Subscription, r: Reaction) -> SubscriptionStatusChanged | None:
    """The status change a campaign action makes on one subscription, or None (R9, R20)."""
    status = status_after(sub.status, r.action)
    if status is None:
        return None
    return SubscriptionStatusChanged(
        **_env(r.profile_id, database_id, datetime.now(UTC)),
        data=SubscriptionStatusChangedData(
            sub_id=sub.sub_id,
            resource_id=sub.resource_id,
            channel=sub.channel,
            status=status,
            consent=Consent(how="campaign", ip=r.ip, detail=r.detail or r.action),
        ),
    )


def _find(subs: Sequence[Subscription], sub_id: UUID) -> Subscription:
    for s in subs:
        if s.sub_id == sub_id:
            return s
    raise NotFoundError(f"subscription {sub_id}")


def _env(profile_id: UUID, database_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "source": SOURCE,
        "time": now,
        "subject": profile_id,
        "database_id": database_id,
    }


def _plain(s: Subscription) -> dict[str, Any]:
    return {
        "sub_id": str(s.sub_id),
        "resource_id": s.resource_id,
        "channel": s.channel,
        "contact": s.contact,
        "status": s.status,
        "priority": s.priority,
        "created_at": s.created_at.isoformat(),
        "categories": dict(s.categories),
        "fields": dict(s.fields),
        "custom": dict(s.custom),
        "deleted": s.deleted,
    }


def _subscription(d: dict[str, Any]) -> Subscription:
    return Subscription(
        sub_id=UUID(d["sub_id"]),
        resource_id=d["resource_id"],
        channel=d["channel"],
        contact=d["contact"],
        status=d["status"],
        priority=d["priority"],
        created_at=datetime.fromisoformat(d["created_at"]),
        categories=MappingProxyType(d["categories"]),
        fields=MappingProxyType(d["fields"]),
        custom=MappingProxyType(d["custom"]),
        deleted=d["deleted"],
    )
