"""File imports as jobs over real HTTP and PostgreSQL: progress, counts, row errors, resume (R3)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from domain.imports import ImportItem
from services import file_imports, runtime
from services.cli import app as cli
from services.event_ids import derived_id, new_id
from services.import_worker import owning
from tests.api import Api

pytestmark = pytest.mark.postgres


async def _finished(api: Api, db: str, job: dict[str, Any]) -> dict[str, Any]:
    for _ in range(600):
        got = await api.client.get(f"/v1/databases/{db}/imports/{job['job_id']}")
        body: dict[str, Any] = got.json()
        if body["state"] in ("done", "failed"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job['job_id']} did not finish")


async def _upload(api: Api, db: str, content: bytes, kind: str, **params: Any) -> dict[str, Any]:
    response = await api.client.post(
        f"/v1/databases/{db}/imports",
        content=content,
        headers={"Content-Type": kind},
        params=params,
    )
    assert response.status_code == 202, response.text
    assert response.headers["Location"].endswith(response.json()["job_id"])
    result: dict[str, Any] = response.json()
    return result


async def test_csv_import_counts_rows_and_records_each_bad_row_R3(api: Api) -> None:
    db = await api.database(visits={"type": "number"}, bought={"type": "tags"})
    content = (
        b"email,first_name,visits,bought,phones\r\n"
        b"a@example.com,Ann,1,x|y,+4930100001\n"
        b"not-an-email,Bob,2,,\n"
        b"\n"
        b"c@example.com,Cy,three,z,+4930100003;+4930100004\n"
        b"A@EXAMPLE.COM,Ann2,4,y;w,\n"
        b'"d@example.com","Dee, the second",5,"",\n'
        b"e@example.com,Eve,6\n"
    )
    job = await _finished(api, db, await _upload(api, db, content, "text/csv"))
    assert job["state"] == "done"
    assert (job["rows"], job["created"], job["updated"], job["rejected"]) == (6, 2, 1, 3)
    assert job["progress"] == 1.0
    errors = {r["row"]: [(e["field"], e["rule"]) for e in r["errors"]] for r in job["errors"]}
    assert errors == {
        2: [("email", "email_syntax")],
        3: [("custom.visits", "number_format")],
        6: [("row", "column_count")],
    }
    ann = await api.read(
        f"/v1/databases/{db}/profiles/by-email/a@example.com", job["consistency_token"]
    )
    assert ann.json()["custom"] == {"visits": 4, "bought": ["y", "w"]}
    assert ann.json()["fields"] == {"first_name": "Ann2"}
    assert ann.json()["import_mode"] == "file"
    assert ann.json()["phones"] == ["+4930100001"]
    dee = await api.read(
        f"/v1/databases/{db}/profiles/by-email/d@example.com", job["consistency_token"]
    )
    assert dee.json()["fields"]["first_name"] == "Dee, the second"


async def test_ndjson_import_uses_the_api_shape(api: Api) -> None:
    db = await api.database(plan={"type": "enum", "options": "free,pro"})
    lines = [
        {"email": "n1@example.com", "custom": {"plan": "pro"}, "fields": {"city": "Oslo"}},
        {"email": "n2@example.com", "custom": {"plan": "gold"}},
        {"nonsense": True},
    ]
    content = b"\n".join(orjson.dumps(line) for line in lines) + b"\n{broken\n"
    job = await _finished(api, db, await _upload(api, db, content, "application/x-ndjson"))
    assert (job["rows"], job["created"], job["rejected"]) == (4, 1, 3)
    assert [r["row"] for r in job["errors"]] == [2, 3, 4]
    assert job["errors"][0]["errors"][0]["rule"] == "enum_option"


async def test_ndjson_lines_take_the_jobs_mode_and_geo_unless_they_say_otherwise_R21(
    api: Api,
) -> None:
    """An NDJSON line has the API's shape, not its defaults: "file" mode, no geo unless asked."""
    db = await api.database()
    lines = [
        {"email": "nd1@example.com", "fields": {"reg_ip": "81.2.69.142"}},
        {"email": "nd2@example.com", "fields": {"reg_ip": "81.2.69.142"}, "geo": True},
        {"email": "nd3@example.com", "mode": "push"},
    ]
    content = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    job = await _finished(api, db, await _upload(api, db, content, "application/x-ndjson"))
    assert (job["created"], job["rejected"]) == (3, 0)
    token = job["consistency_token"]
    first = (await api.read(f"/v1/databases/{db}/profiles/by-email/nd1@example.com", token)).json()
    assert first["import_mode"] == "file"
    assert first["tabs"]["reg"] == {"reg_ip": "81.2.69.142"}  # not located: the job said no
    second = (await api.read(f"/v1/databases/{db}/profiles/by-email/nd2@example.com", token)).json()
    assert second["tabs"]["reg"]["reg_city"] == "London"  # the line asked for it
    third = (await api.read(f"/v1/databases/{db}/profiles/by-email/nd3@example.com", token)).json()
    assert third["import_mode"] == "push"


async def test_file_geo_is_opt_in_R21(api: Api) -> None:
    db = await api.database()
    content = b"email,reg_ip\ng1@example.com,81.2.69.142\n"
    plain = await _finished(api, db, await _upload(api, db, content, "text/csv"))
    got = await api.read(
        f"/v1/databases/{db}/profiles/by-email/g1@example.com", plain["consistency_token"]
    )
    assert got.json()["tabs"]["reg"] == {"reg_ip": "81.2.69.142"}
    content = b"email,reg_ip\ng2@example.com,81.2.69.142\n"
    located = await _finished(api, db, await _upload(api, db, content, "text/csv", geo="true"))
    got = await api.read(
        f"/v1/databases/{db}/profiles/by-email/g2@example.com", located["consistency_token"]
    )
    assert got.json()["tabs"]["reg"]["reg_city"] == "London"


async def test_bad_header_and_type_are_refused_before_a_job_exists(api: Api) -> None:
    db = await api.database()
    before = await api.fetch("SELECT count(*) AS n FROM ingest.import_jobs")
    bad = await api.client.post(
        f"/v1/databases/{db}/imports",
        content=b"email,shoe_size,email\nx@example.com,4,\n",
        headers={"Content-Type": "text/csv"},
    )
    assert bad.status_code == 422
    assert {(e["rule"], e["value"]) for e in bad.json()["errors"]} == {
        ("unknown_column", "shoe_size"),
        ("duplicate_column", "email"),
    }
    unknown = await api.client.post(
        f"/v1/databases/{db}/imports", content=b"x", headers={"Content-Type": "image/png"}
    )
    assert unknown.status_code == 415
    assert await api.fetch("SELECT count(*) AS n FROM ingest.import_jobs") == before


@pytest.mark.parametrize("job_id_kind", ["time-ordered", "random (begun before v7 ids)"])
async def test_resumed_job_applies_every_row_once(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_id_kind: str
) -> None:
    """A crash re-appends a chunk with the ids it had: each row is applied once, for a job
    with a time-ordered id (derived ids) and one begun with a random id (name-based ids)."""
    db = await api.database(visits={"type": "number"})
    path = tmp_path / "people.csv"
    path.write_text("email,visits\n" + "".join(f"r{n}@example.com,{n}\n" for n in range(35)))
    monkeypatch.setattr(file_imports, "CHUNK_ROWS", 10)
    rt = api.runtime
    job_id = new_id() if job_id_kind == "time-ordered" else uuid.uuid4()
    async with owning(rt.pool, job_id) as owned:  # the server's worker keeps off this job
        assert owned
        async with rt.pool.acquire() as conn:
            await file_imports.create(conn, db, "csv", False, path, job_id)
        stop = asyncio.Event()
        stop.set()  # stop after the first chunk, as a shutdown would
        first = await file_imports.run(rt.pool, rt.importer, job_id, stop=stop)
        assert (first.state, first.rows_done) == ("running", 10)
        # a crash after appending rows 11-20 but before recording them: they will come again
        again = [ImportItem(email=f"r{n}@example.com", custom={"visits": str(n)}, text=True)
                 for n in range(10, 20)]  # fmt: skip
        ids = [derived_id(job_id, row) for row in range(11, 21)]
        await rt.importer.run(db, again, "file", locate=False, source="/tests", ids=ids)
        done = await file_imports.run(rt.pool, rt.importer, job_id)
    assert (done.state, done.rows_done, done.created, done.rejected) == ("done", 35, 25, 0)
    job = await api.client.get(f"/v1/databases/{db}/imports/{job_id}")
    last = await api.read(
        f"/v1/databases/{db}/profiles/by-email/r34@example.com", job.json()["consistency_token"]
    )
    assert last.json()["custom"] == {"visits": 34}
    versions = await api.fetch(
        "SELECT version, count(*) AS n FROM read_models.profiles WHERE database_id = $1 GROUP BY 1",
        db,
    )
    assert [(r["version"], r["n"]) for r in versions] == [(1, 35)]  # each row applied once


async def test_an_unreadable_chunk_fails_the_job_after_the_chunks_before_it_R3(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next chunk is read while one commits: a chunk that cannot be read still fails the
    job only after every chunk before it was committed, and nothing of it is applied."""
    db = await api.database(visits={"type": "number"})
    path = tmp_path / "people.csv"
    rows = [f"u{n}@example.com,{n}\n".encode() for n in range(35)]
    rows[25] = b"u25@example.com,\xff\xfe\n"  # not UTF-8
    path.write_bytes(b"email,visits\n" + b"".join(rows))
    monkeypatch.setattr(file_imports, "CHUNK_ROWS", 10)
    rt = api.runtime
    job_id = new_id()
    async with owning(rt.pool, job_id) as owned:
        assert owned
        async with rt.pool.acquire() as conn:
            await file_imports.create(conn, db, "csv", False, path, job_id)
        job = await file_imports.run(rt.pool, rt.importer, job_id)
    assert (job.state, job.rows_done, job.created) == ("failed", 20, 20)
    assert job.failure is not None
    assert job.failure.startswith("UnicodeDecodeError")
    counted = await api.fetch(
        "SELECT count(*) AS n FROM ingest.identities i JOIN ingest.profiles p USING (profile_id) "
        "WHERE p.database_id = $1 AND i.kind = 'email'",
        db,
    )
    assert counted[0]["n"] == 20  # rows 1-20 claimed, none of the unreadable chunk


async def test_a_person_met_in_consecutive_chunks_keeps_the_last_row_R6(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk N+1 is decided while chunk N is appended; the appends still land in file order."""
    db = await api.database(visits={"type": "number"})
    path = tmp_path / "repeat.csv"
    rows = [f"p{n % 7}@example.com,{n}\n" for n in range(60)]  # 7 people, each in every chunk
    path.write_text("email,visits\n" + "".join(rows))
    monkeypatch.setattr(file_imports, "CHUNK_ROWS", 4)
    job_id = uuid.uuid4()
    async with owning(api.runtime.pool, job_id):
        async with api.runtime.pool.acquire() as conn:
            await file_imports.create(conn, db, "csv", False, path, job_id)
        done = await file_imports.run(api.runtime.pool, api.runtime.importer, job_id)
    assert (done.state, done.rows_done, done.created, done.updated) == ("done", 60, 7, 53)
    token = (await api.client.get(f"/v1/databases/{db}/imports/{job_id}")).json()
    for person in range(7):
        last = max(n for n in range(60) if n % 7 == person)
        got = await api.read(
            f"/v1/databases/{db}/profiles/by-email/p{person}@example.com",
            token["consistency_token"],
        )
        assert (got.json()["custom"], got.json()["version"]) == (
            {"visits": last},
            60 // 7 + (person < 60 % 7),
        )


async def test_cli_imports_a_file_with_progress(api: Api, tmp_path: Path) -> None:
    db = await api.database(visits={"type": "number"})
    path = tmp_path / "cli.csv"
    path.write_text(
        "email,visits\n" + "".join(f"c{n}@example.com,{n}\n" for n in range(50)) + "bad,1\n"
    )
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["import", str(path), "--database", db, "--database-url", str(api.settings.database_url)],
    )
    assert result.exit_code == 0, result.output
    assert "51 rows" in result.output
    assert "50 created, 0 updated, 1 rejected" in result.output
    assert "row 51: email: email_syntax" in result.output
    rows = await api.fetch("SELECT count(*) AS n FROM ingest.profiles WHERE database_id = $1", db)
    assert rows[0]["n"] == 50


async def test_row_errors_page_after_a_row_and_an_oversized_upload_is_refused_R3(
    api: Api,
) -> None:
    db = await api.database(visits={"type": "number"})
    content = (
        b"email,visits\nok1@example.com,1\nbad,2\nok2@example.com,3\nbad2,x\nok3@example.com,many\n"
    )
    job = await _finished(api, db, await _upload(api, db, content, "text/csv"))
    assert [r["row"] for r in job["errors"]] == [2, 4, 5]
    later = await api.client.get(
        f"/v1/databases/{db}/imports/{job['job_id']}", params={"errors_after": 2}
    )
    assert [r["row"] for r in later.json()["errors"]] == [4, 5]
    rt = api.runtime
    original = rt.settings
    rt.settings = dataclasses.replace(original, max_import_bytes=64)
    try:
        too_big = await api.client.post(
            f"/v1/databases/{db}/imports", content=content, headers={"Content-Type": "text/csv"}
        )
    finally:
        rt.settings = original
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    jobs = await api.fetch(
        "SELECT count(*) AS n FROM ingest.import_jobs WHERE database_id = $1", db
    )
    assert jobs[0]["n"] == 1  # no job for the refused file


class _Cycle:
    def __init__(self) -> None:
        self.me = self  # only the cyclic garbage collector frees it


async def test_a_job_in_its_own_process_collects_garbage_between_chunks_only(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`profiles import` runs the collector between chunks (`collect_between_chunks`): none
    runs during a chunk, what chunks leave is freed between them, and the collector is on
    again when the job ends, done or failed (performance, DESIGN 5)."""
    db = await api.database(visits={"type": "number"})
    path = tmp_path / "people.csv"
    path.write_text("email,visits\n" + "".join(f"g{n}@example.com,{n}\n" for n in range(35)))
    monkeypatch.setattr(file_imports, "CHUNK_ROWS", 10)
    monkeypatch.setattr(runtime, "COLLECT_AFTER", 75_000)  # reached after two chunks' cycles
    seen: list[tuple[bool, int]] = []
    chunk = file_imports._import_chunk

    async def leaving_cycles(*args: Any) -> None:
        seen.append((gc.isenabled(), sum(isinstance(o, _Cycle) for o in gc.get_objects())))
        for _ in range(50_000):
            _Cycle()
        await chunk(*args)

    monkeypatch.setattr(file_imports, "_import_chunk", leaving_cycles)
    rt = api.runtime
    job_id = uuid.uuid4()
    gc.collect()
    async with owning(rt.pool, job_id) as owned:
        assert owned
        async with rt.pool.acquire() as conn:
            await file_imports.create(conn, db, "csv", False, path, job_id)
        job = await file_imports.run(rt.pool, rt.importer, job_id, collect_between_chunks=True)
    assert (job.state, job.rows_done) == ("done", 35)
    assert [on for on, _ in seen] == [False] * 4  # no automatic collection in any chunk
    assert [alive for _, alive in seen][:3] == [0, 50_000, 0]  # freed after the second chunk
    assert gc.isenabled()
