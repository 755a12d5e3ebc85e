"""All read models, projected together: one batch, one transaction, one checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from contracts import Event
from projections import databases, history, interactions, profiles, subscriptions

NAME = "read_models"


async def project(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Hand the batch to every read model; each takes the events it knows."""
    await databases.project(conn, events)
    await profiles.project(conn, events)
    await subscriptions.project(conn, events)
    await history.project(conn, events)
    await interactions.project(conn, events)
