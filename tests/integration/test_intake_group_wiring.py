"""`profiles intake` on an intake topic of its own joins a consumer group of that topic, not the
`profiles-intake` group that deployments on the default topic commit their offsets in."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from tests.integration.procs import group_members, logged, start_profiles, terminate
from tests.pg import fresh_database

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_intake_on_another_topic_joins_that_topic_s_group(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"intake.{uuid.uuid4().hex}"
    path = tmp_path / "intake.log"
    async with fresh_database(database_url) as url:
        env = {
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PROFILES_EVENTS_TOPIC": f"events.{uuid.uuid4().hex}",
            "PROFILES_INTAKE_TOPIC": topic,
        }
        proc = start_profiles(["intake"], env, path)
        try:
            assert await logged(path, "intake.started"), path.read_text()[-2000:]
            started = [
                json.loads(line)
                for line in path.read_text().splitlines()
                if '"intake.started"' in line
            ]
            assert [line["group"] for line in started] == [f"profiles-intake.{topic}"]
            members: list[str] = []
            for _ in range(100):  # joined once its first poll ran
                if members := await group_members(kafka_bootstrap, f"profiles-intake.{topic}"):
                    break
                await asyncio.sleep(0.1)
            assert len(members) == 1
        finally:
            assert terminate(proc) == 0, path.read_text()[-2000:]
