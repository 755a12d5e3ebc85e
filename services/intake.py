"""The intake: public events in, canonical events out (R18, R20, R21).

Each event's `data` is checked against its canonical type, its profile reference is resolved
(profile id, MD5, XXH, or database + email/phone), opens, clicks and pixel hits are located from
their IP, and the canonical event is appended with the publisher's id, so a double publish is
applied once. Campaign actions on a subscription also move its status (R9, R20).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
import orjson
from pydantic import ValidationError as DataError

from contracts import CURRENT_VERSIONS, MAX_EVENT_BYTES, EncodedEvent, encoded
from contracts.intake import ProfileRef, PublicEvent
from contracts.text import NUL, nul_places
from domain.errors import ValidationError, Violation
from domain.geo import tracked_fields
from domain.identity import normalise_email, normalise_phone
from domain.profile import LOCATING_TYPES
from domain.subscriptions import CampaignAction
from services.eventlog.port import EventLog, Position
from services.geo import GeoLocator
from services.subscribing import Reaction, Subscriptions

_LOCATED = LOCATING_TYPES  # R21
_REACTIONS: dict[str, CampaignAction] = {
    "campaign.confirmation_clicked": "confirmation_click",
    "campaign.hard_bounced": "hard_bounce",
    "campaign.complained": "complaint",
    "campaign.unsubscribe_clicked": "unsubscribe_click",
}


@dataclass(frozen=True)
class Outcome:
    """What became of one public event."""

    index: int
    outcome: Literal["accepted", "rejected"]
    profile_id: UUID | None = None
    violations: tuple[Violation, ...] = ()
    status: str | None = None  # the subscription status a campaign action set


@dataclass(frozen=True)
class Intake:
    """Accepts public events over a pool, the event log and the optional GeoIP reader."""

    pool: asyncpg.Pool
    log: EventLog
    geo: GeoLocator | None = None

    async def accept(
        self, events: Sequence[PublicEvent], now: datetime | None = None
    ) -> tuple[list[Outcome], list[Position]]:
        """Check, resolve, enrich and append; an outcome per event, in order."""
        arrived = now or datetime.now(UTC)
        # a NUL would fail the lookups below for the whole batch: those events are refused
        # first, and the others looked up without them
        unstorable = {i: bad for i, e in enumerate(events) if (bad := _unstorable(e))}
        storable = [e for i, e in enumerate(events) if i not in unstorable]
        async with self.pool.acquire() as conn:
            found = iter(await _resolve(conn, [e.profile for e in storable]))
            others = await _live(conn, _related(storable))
        owners = [None if i in unstorable else next(found) for i in range(len(events))]
        outcomes: list[Outcome] = []
        canonical: list[EncodedEvent] = []
        reactions: list[tuple[int, UUID, str, dict[str, Any]]] = []
        for index, public in enumerate(events):
            if index in unstorable:
                outcomes.append(Outcome(index, "rejected", None, unstorable[index]))
                continue
            owner = owners[index]
            try:
                data = _data(public, others)
            except ValidationError as bad:
                outcomes.append(Outcome(index, "rejected", None, tuple(bad.violations)))
                continue
            if owner is None:
                miss = Violation("profile", "profile_not_found", _describe(public.profile))
                outcomes.append(Outcome(index, "rejected", None, (miss,)))
                continue
            profile_id, database_id = owner
            if data.get("other_profile_id") == str(profile_id):  # R25: between two profiles
                same = Violation("data.other_profile_id", "same_profile", str(profile_id))
                outcomes.append(Outcome(index, "rejected", None, (same,)))
                continue
            data = self._located(public.type, data)
            # encoded straight from the checked values: a model built here would only be
            # validated again and serialised (tests/contract/test_encoded.py)
            made = encoded.event(
                type=public.type,
                schema_version=CURRENT_VERSIONS[public.type],
                id=public.id,
                source=public.source,
                time=public.time or arrived,
                subject=profile_id,
                database_id=database_id,
                data=data,
            )
            if len(made.value) > MAX_EVENT_BYTES:  # no log takes it (contracts.encoded)
                large = Violation("event", "too_large", len(made.value))
                outcomes.append(Outcome(index, "rejected", None, (large,)))
                continue
            canonical.append(made)
            outcomes.append(Outcome(index, "accepted", profile_id))
            if public.type in _REACTIONS:
                reactions.append((index, profile_id, public.type, data))
        positions = await self.log.append(canonical) if canonical else []
        if reactions:  # the statuses they move, all in one transaction after the actions
            moved, more = await Subscriptions(self.pool, self.log).react_many(
                [
                    _reaction(profile_id, event_type, data)
                    for _, profile_id, event_type, data in reactions
                ]
            )
            positions += more
            for (index, profile_id, _, _), done in zip(reactions, moved, strict=True):
                if done:
                    outcomes[index] = Outcome(index, "accepted", profile_id, status=done[-1].status)
        return outcomes, positions

    def _located(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        ip = data.get("ip")
        if event_type not in _LOCATED or self.geo is None or not ip:
            return data
        where = self.geo.locate(str(ip))
        return data if where is None else {**data, "location": tracked_fields(where)}


def _unstorable(public: PublicEvent) -> tuple[Violation, ...]:
    """A violation for each string of the event that holds a NUL (`contracts.text`); the value
    is never echoed (it goes to a dead letter's reason, or a log line)."""
    profile = public.profile.__dict__
    texts = (public.source, *(v for v in profile.values() if isinstance(v, str)))
    # orjson writes a NUL as its escape: one C call for `data` instead of a walk in Python
    # (the walk, on a model dump, cost 10.8 µs an event; this 2.7)
    if not any(NUL in t for t in texts) and b"\\u0000" not in orjson.dumps(public.data):
        return ()
    parts = {"source": public.source, "profile": profile, "data": public.data}
    return tuple(Violation(place, "nul_character", None) for place in nul_places(parts))


def _reaction(profile_id: UUID, event_type: str, data: dict[str, Any]) -> Reaction:
    """What a campaign action asks of the profile's subscriptions (R20), and where (R8)."""
    sub_id = data.get("sub_id")
    return Reaction(
        profile_id=profile_id,
        action=_REACTIONS[event_type],
        detail=f"{event_type} campaign={data.get('campaign_id')}"[:200],
        sub_id=None if sub_id is None else UUID(str(sub_id)),
        resource_id=data.get("resource_id"),
        channel=data.get("channel"),
        ip=data.get("ip"),
    )


def _data(public: PublicEvent, live: set[UUID]) -> dict[str, Any]:
    current = CURRENT_VERSIONS[public.type]
    if public.schema_version not in (None, current):
        raise ValidationError(
            [Violation("schema_version", "unsupported_version", public.schema_version)]
        )
    if "location" in public.data:  # R21: from the IP, here; a publisher cannot say where
        raise ValidationError([Violation("data.location", "set_from_ip", None)])
    try:
        data = public.data_class().model_validate(public.data)
    except DataError as error:
        raise ValidationError(
            [
                Violation(".".join(["data", *(str(p) for p in e["loc"])]), e["type"], None)
                for e in error.errors(include_url=False)
            ]
        ) from None
    plain: dict[str, Any] = data.model_dump(mode="json")
    other = plain.get("other_profile_id")
    if other is not None and UUID(other) not in live:  # R25: both sides must exist
        raise ValidationError([Violation("data.other_profile_id", "profile_not_found", other)])
    return plain


def _related(events: Sequence[PublicEvent]) -> list[UUID]:
    out = []
    for e in events:
        other = e.data.get("other_profile_id")
        if isinstance(other, str):
            try:
                out.append(UUID(other))
            except ValueError:
                continue
    return out


async def _live(conn: asyncpg.Connection, ids: list[UUID]) -> set[UUID]:
    if not ids:
        return set()
    rows = await conn.fetch(
        "SELECT profile_id FROM ingest.profiles WHERE profile_id = ANY($1::uuid[]) "
        "AND deleted_at IS NULL",
        ids,
    )
    return {r["profile_id"] for r in rows}


async def _resolve(
    conn: asyncpg.Connection, refs: Sequence[ProfileRef]
) -> list[tuple[UUID, str] | None]:
    """Each reference's live profile and database (None: no such profile), in order, in two
    queries at most. Looked up by place, not by reference: a frozen model hashes every field
    in Python, twice per event."""
    by_id = [r.profile_id for r in refs if r.profile_id is not None]
    md5s = [r.md5_id.lower() for r in refs if r.md5_id is not None]
    xxhs = [r.xxh_id.lower() for r in refs if r.xxh_id is not None]
    rows = await conn.fetch(
        "SELECT profile_id, database_id, md5_id, xxh_id FROM ingest.profiles "
        "WHERE deleted_at IS NULL AND (profile_id = ANY($1::uuid[]) OR md5_id = ANY($2::text[]) "
        "OR xxh_id = ANY($3::text[]))",
        by_id,
        md5s,
        xxhs,
    )
    found: dict[tuple[str, ...], tuple[UUID, str]] = {}
    for r in rows:
        row = (r["profile_id"], r["database_id"])
        found["id", str(r["profile_id"])] = row
        found["md5", r["md5_id"]] = row
        found["xxh", r["xxh_id"]] = row
    keys = [_key(r) for r in refs]
    claims = [k for k in keys if k is not None and k[0] in ("email", "phone")]
    if claims:
        rows = await conn.fetch(
            "SELECT i.database_id, i.kind, i.value, i.profile_id FROM ingest.identities i "
            "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(db, kind, value) "
            "ON i.database_id = k.db AND i.kind = k.kind AND i.value = k.value",
            [c[2] for c in claims],
            [c[0] for c in claims],
            [c[1] for c in claims],
        )
        for r in rows:
            found[r["kind"], r["value"], r["database_id"]] = (r["profile_id"], r["database_id"])
    return [None if key is None else found.get(key) for key in keys]


def _key(ref: ProfileRef) -> tuple[str, ...] | None:
    try:
        if ref.profile_id is not None:
            return ("id", str(ref.profile_id))
        if ref.md5_id is not None:
            return ("md5", ref.md5_id.lower())
        if ref.xxh_id is not None:
            return ("xxh", ref.xxh_id.lower())
        if ref.email is not None:
            return ("email", normalise_email(ref.email), str(ref.database_id))
        return ("phone", normalise_phone(str(ref.phone)), str(ref.database_id))
    except ValidationError:
        return None


def _describe(ref: ProfileRef) -> str:
    # which way it was named, never the email or phone itself
    for name in ("profile_id", "md5_id", "xxh_id", "email", "phone"):
        if getattr(ref, name) is not None:
            return name if name in ("email", "phone") else str(getattr(ref, name))
    return "profile"
