"""Checkpoints: where each projection stands in each partition, advanced with a fence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg


class Fenced(Exception):  # noqa: N818 -- a state, like StopIteration, not a failure
    """Another runner advanced a checkpoint this runner expected: it must re-seek, not write."""


async def load(
    conn: asyncpg.Connection, projection: str, topic: str, partitions: Sequence[int]
) -> dict[int, int]:
    """The stored next offset of each partition; 0 where none is stored."""
    rows = await conn.fetch(
        "SELECT partition, next_offset FROM checkpoints "
        "WHERE projection = $1 AND topic = $2 AND partition = ANY($3::int[])",
        projection,
        topic,
        list(partitions),
    )
    stored = {r["partition"]: r["next_offset"] for r in rows}
    return {p: stored.get(p, 0) for p in partitions}


async def advance(
    conn: asyncpg.Connection,
    projection: str,
    topic: str,
    moves: Mapping[int, tuple[int, int]],
) -> None:
    """Compare-and-set each partition from expected to new next offset; raise Fenced on a miss.

    Runs inside the batch transaction: a miss rolls the whole batch back.
    """
    parts = list(moves)
    rows = await conn.fetch(
        """
        INSERT INTO checkpoints AS c (projection, topic, partition, next_offset)
        SELECT $1, $2, p, n FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS m(p, e, n)
        WHERE e = 0 OR EXISTS (
            SELECT 1 FROM checkpoints x
            WHERE x.projection = $1 AND x.topic = $2 AND x.partition = m.p
        )
        ON CONFLICT (projection, topic, partition) DO UPDATE
            SET next_offset = excluded.next_offset, updated_at = now()
            WHERE c.next_offset = (
                SELECT e FROM unnest($3::int[], $4::bigint[]) AS q(p, e) WHERE q.p = c.partition
            )
        RETURNING partition
        """,
        projection,
        topic,
        parts,
        [moves[p][0] for p in parts],
        [moves[p][1] for p in parts],
    )
    if len(rows) != len(parts):
        won = {r["partition"] for r in rows}
        raise Fenced(f"{projection}: checkpoints moved under us for partitions {set(parts) - won}")
