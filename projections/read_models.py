"""All read models, projected together: one batch, one transaction, one checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from contracts import CURRENT_VERSIONS, Event
from projections import databases, history, interactions, profiles, subscriptions

NAME = "read_models"

# the read models that take only some event types, each declaring them (`HANDLES`); the
# timeline takes every event
_MODELS = (databases, profiles, subscriptions, interactions)
# event type -> the models that read it, in the order they are projected
_ROUTES: dict[str, tuple[int, ...]] = {
    t: tuple(i for i, model in enumerate(_MODELS) if t in model.HANDLES) for t in CURRENT_VERSIONS
}


async def project(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Hand the batch to every read model, each only the events it reads, in the log's order.

    One pass sorts the batch out: each model filtering all of it for its own types took
    eight passes over a catch-up batch of 40,000 profile events (1.4-1.7 µs an event; with
    the lanes, 0.8 with the passes the profiles and the timeline still make).
    """
    dbs: list[Event] = []
    own: list[Event] = []
    subs: list[Event] = []
    acts: list[Event] = []
    lanes = (dbs, own, subs, acts)  # in the order of _MODELS
    for event in events:
        for lane in _ROUTES[event.type]:
            lanes[lane].append(event)
    if dbs:
        await databases.project(conn, dbs)
    if own:
        await profiles.project(conn, own)
    if subs:
        await subscriptions.project(conn, subs)
    await history.project(conn, events)
    if acts:
        await interactions.project(conn, acts)
