"""The import pipeline shared by single, batch and file imports (R3-R8, R21).

Validate every item against the database structure, locate Reg IP, then resolve identities in
one set-based transaction that also stages one `profile.imported` per accepted item on the log
(claims and events commit together; on Kafka the outbox publishes them after the commit). A
rejected item carries all its violations and never stops the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from pydantic import JsonValue

from contracts import EncodedEvent, GlobalStatus, ImportMode, encoded
from contracts.api import ImportProfileRequest
from domain.database import DatabaseState
from domain.errors import DomainError, ValidationError, Violation
from domain.geo import registration_fields
from domain.imports import ImportItem, PreparedImport, RefKind, prepare
from services import identity, structure
from services.event_ids import new_id
from services.eventlog.port import EventLog, Position, Staged
from services.geo import GeoLocator

NOT_SENDABLE = frozenset(
    {"unsubscribed", "complainer", "hard_bounced", "suspended", "invalid", "unconfirmed"}
)


class DatabaseNotFoundError(DomainError):
    """The import names a database that does not exist."""


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one item: its profile, or every rule it broke."""

    index: int
    profile_id: UUID | None = None
    created: bool = False
    suppressed: bool = False
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    """The outcome of each item, in order, and where the accepted ones landed on the log."""

    outcomes: list[ItemOutcome]
    positions: list[Position]


@dataclass(frozen=True)
class Checked:
    """Items checked against their database: the rejected ones' outcomes, the accepted ones."""

    database_id: str
    outcomes: Sequence[ItemOutcome | None]  # None where the item was accepted
    accepted: Sequence[tuple[int, PreparedImport]]


def check(database: DatabaseState, items: Sequence[ImportItem]) -> Checked:
    """Validate items (pure CPU: a file import runs it in a thread, overlapping database work)."""
    outcomes: list[ItemOutcome | None] = []
    accepted: list[tuple[int, PreparedImport]] = []
    for index, item in enumerate(items):
        try:
            accepted.append((index, prepare(database, item)))
            outcomes.append(None)
        except ValidationError as error:
            outcomes.append(ItemOutcome(index, violations=tuple(error.violations)))
    return Checked(database.database_id, outcomes, accepted)


@dataclass(frozen=True)
class Importer:
    """Everything an import needs: the database pool, the log, and the optional GeoIP reader."""

    pool: asyncpg.Pool
    log: EventLog
    geo: GeoLocator | None = None

    async def run(
        self,
        database_id: str,
        items: Sequence[ImportItem],
        mode: ImportMode,
        *,
        locate: bool,
        source: str,
        ids: Sequence[UUID] | None = None,
    ) -> ImportResult:
        """Import `items` into the database; DatabaseNotFoundError when it does not exist.

        `ids`, one per item, make the appended event ids deterministic: a file import that
        resumes after a crash re-appends a chunk with the same ids, and projections drop the
        duplicates.
        """
        async with self.pool.acquire() as conn:
            database = await structure.load(conn, database_id)
        if database is None:
            raise DatabaseNotFoundError(database_id)
        return await self.commit(
            check(database, items), mode, locate=locate, source=source, ids=ids
        )

    async def commit(
        self,
        checked: Checked,
        mode: ImportMode,
        *,
        locate: bool,
        source: str,
        ids: Sequence[UUID] | None = None,
    ) -> ImportResult:
        """Resolve identities and append the events of items `check` accepted, in one
        transaction: the claims and the events commit together (on Kafka the events go through
        the outbox and are published after the commit)."""
        outcomes = list(checked.outcomes)
        accepted = checked.accepted
        database_id = checked.database_id
        now = datetime.now(UTC)

        async def stage(resolutions: list[identity.Resolution]) -> Staged:
            # R8 also for an import that names the profile but not its (suppressed) address
            matched = [
                r.profile_id
                for (_, p), r in zip(accepted, resolutions, strict=True)
                if isinstance(r, identity.Resolved) and not r.created and not p.email
            ]
            blocked_profiles = await identity.suppressed_profiles(conn, matched)
            events = []
            for (index, ready), resolution in zip(accepted, resolutions, strict=True):
                if not isinstance(resolution, identity.Resolved):
                    outcomes[index] = ItemOutcome(index, violations=tuple(resolution))
                    continue
                suppressed = ready.email in blocked or resolution.profile_id in blocked_profiles
                event_id = ids[index] if ids is not None else new_id()
                here = locate if ready.locate is None else ready.locate
                events.append(
                    self._event(
                        database_id,
                        ready,
                        resolution,
                        ready.mode or mode,
                        now,
                        source,
                        here,
                        event_id,
                        _suppressed(ready.status) if suppressed else ready.status,
                    )
                )
                outcomes[index] = ItemOutcome(
                    index, resolution.profile_id, resolution.created, suppressed
                )
            return await self.log.stage(conn, events)

        async with self.pool.acquire() as conn:
            emails = [p.email for _, p in accepted if p.email]
            blocked = await identity.suppressed(conn, emails)
            claims = [identity.Claim(p.keys, p.ref) for _, p in accepted]
            _, staged = await identity.resolve_then(conn, database_id, claims, stage)
        positions = await self.log.publish(staged)
        return ImportResult([o for o in outcomes if o is not None], positions)

    def _event(
        self,
        database_id: str,
        item: PreparedImport,
        resolved: identity.Resolved,
        mode: ImportMode,
        now: datetime,
        source: str,
        locate: bool,
        event_id: UUID,
        status: GlobalStatus | None,
    ) -> EncodedEvent:
        # encoded without a pydantic model: prepare() already checked every value against
        # stricter rules and the envelope values are ours; it is a file import's hot path
        return encoded.profile_imported(
            id=event_id,
            source=source,
            time=now,
            subject=resolved.profile_id,
            database_id=database_id,
            import_mode=mode,
            created=resolved.created,
            email=item.email,
            phones=item.phones,
            fields=item.fields,
            custom=item.custom,
            status=status,
            located=self._located(item) if locate else {},
        )

    def _located(self, item: PreparedImport) -> dict[str, JsonValue]:
        reg_ip = item.fields.get("reg_ip")
        if self.geo is None or not isinstance(reg_ip, str):
            return {}
        where = self.geo.locate(reg_ip)
        return registration_fields(where) if where is not None else {}


def _suppressed(status: GlobalStatus | None) -> GlobalStatus:
    """An address on the suppression list stays unsendable whatever the import says (R8)."""
    return status if status in NOT_SENDABLE and status is not None else "hard_bounced"


def item_from_request(body: ImportProfileRequest) -> ImportItem:
    """The domain item of an API import body (also one NDJSON line of a file import)."""
    refs: list[tuple[RefKind, str]] = []
    if body.profile_id is not None:
        refs.append(("profile_id", str(body.profile_id)))
    if body.md5_id is not None:
        refs.append(("md5_id", body.md5_id))
    if body.xxh_id is not None:
        refs.append(("xxh_id", body.xxh_id))
    return ImportItem(
        email=body.email,
        phones=body.phones,
        fields=body.fields,
        custom=body.custom,
        status=body.status,
        refs=tuple(refs),
        locate=body.geo,
        mode=body.mode,
    )
