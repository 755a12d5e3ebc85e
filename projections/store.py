"""The read-model store's identity: a random id per schema, made by its migration (0014)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

# where the id was made: a copy of the schema (a database made from this one as a template, a
# renamed schema) has other names, and must not keep its original's id
_MOVED = "(database_name, schema_name) IS DISTINCT FROM (current_database(), current_schema())"


async def store_id(conn: asyncpg.Connection) -> UUID:
    """The id of the store on `conn`'s search path; a new one if the schema was copied.

    Two statements, not one: processes starting at once on a copy (the members of `--workers`)
    must all come back with the id the first of them made. The second's UPDATE waits for the
    first's and then finds nothing to move; its SELECT, a new snapshot, sees the new id.
    """
    await conn.execute(
        "UPDATE store_identity SET store_id = gen_random_uuid(), "
        f"database_name = current_database(), schema_name = current_schema() WHERE {_MOVED}"
    )
    found: UUID = await conn.fetchval("SELECT store_id FROM store_identity")
    return found
