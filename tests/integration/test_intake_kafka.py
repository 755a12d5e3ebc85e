"""The Kafka intake: events land in the timeline once, bad ones in the DLQ (R18, DESIGN 9)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from structlog.testing import capture_logs

from contracts import EncodedEvent, Event
from contracts.intake import ProfileRef, PublicEvent
from services.eventlog.kafka import ensure_topic
from services.eventlog.port import EventLog, LogConsumer, Position, SeekSource, Staged
from services.intake_processor import IntakeProcessor
from services.publisher import Publisher, partition_key
from tests.api import Api
from tests.events import history, new_profile
from tests.integration.procs import group_members

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

PARTITIONS = 2


@pytest.fixture
async def topics(kafka_bootstrap: str) -> tuple[str, str]:
    """A fresh intake topic and its DLQ, so tests never see each other's records."""
    intake = f"intake.{uuid.uuid4().hex}"
    await ensure_topic(kafka_bootstrap, intake, PARTITIONS)
    return intake, f"{intake}.dlq"


def opened(ref: ProfileRef, **data: Any) -> PublicEvent:
    return PublicEvent(
        id=uuid.uuid4(), type="campaign.opened", source="/tests/kafka", profile=ref, data=data
    )


def processor(
    api: Api, bootstrap: str, topics: tuple[str, str], group: str, **options: Any
) -> IntakeProcessor:
    rt = api.runtime
    return IntakeProcessor(
        rt.pool,
        options.pop("log", rt.log),
        rt.geo,
        bootstrap,
        topic=topics[0],
        dlq_topic=topics[1],
        group=group,
        partitions=PARTITIONS,
        poll_timeout=0.1,
        **options,
    )


@contextlib.asynccontextmanager
async def running(proc: IntakeProcessor, stop: asyncio.Event) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(proc.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await task


async def until(task: asyncio.Task[None], done: Callable[[], bool], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not done():
        if task.done():
            task.result()  # the processor's own failure, if any
            return
        assert time.monotonic() < deadline, "the processor did not get there in time"
        await asyncio.sleep(0.05)


async def send_raw(bootstrap: str, topic: str, *records: tuple[bytes, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic`, from the first to the end offsets, with a fresh consumer."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]  # as the processor made it
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        records: list[Any] = []
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            records += [r for rs in batch.values() for r in rs]
        return records
    finally:
        await consumer.stop()


async def campaigns(api: Api, db: str, pid: str) -> list[str]:
    """The campaign ids in the profile's timeline, once every earlier append is projected."""
    later = await api.client.post(f"/v1/databases/{db}/profiles", json={})  # a later position
    assert later.status_code == 201, later.text
    page = await history(api, pid, later.json()["consistency_token"], kind="campaign", limit=1000)
    return [e["summary"]["campaign_id"] for e in page["entries"]]


def header(record: Any, name: str) -> str:
    values = [v for k, v in record.headers if k == name]
    assert len(values) == 1, name
    value: bytes = values[0]
    return value.decode()


async def test_published_events_land_in_the_timeline_once_and_bad_ones_in_the_dlq_R18(
    api: Api, kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    db, pid, _ = await new_profile(api, email="kafka.ann@example.com")
    by_id = ProfileRef(profile_id=uuid.UUID(pid))
    by_email = ProfileRef(database_id=db, email="Kafka.Ann@example.com")
    nobody = ProfileRef(database_id=db, email="kafka.nobody@example.com")
    twice = opened(by_id, campaign_id="twice")
    unknown = {"id": str(uuid.uuid4()), "type": "weather.changed", "source": "/tests/kafka",
               "profile": {"profile_id": pid}, "data": {}}  # fmt: skip
    broken = opened(by_id)  # campaign.opened without its campaign_id
    lost = opened(nobody, campaign_id="lost")
    future = opened(by_id, campaign_id="v9").model_copy(update={"schema_version": 9})
    anonymous = {"id": str(uuid.uuid4()), "type": "campaign.opened", "source": "/tests/kafka",
                 "data": {"campaign_id": "who"}}  # fmt: skip
    async with Publisher(kafka_bootstrap, topic=topics[0]) as publisher:
        for event in (opened(by_id, campaign_id="by-id"), opened(by_email, campaign_id="by-email")):
            await publisher.publish(event)
        await publisher.publish(twice)
        await publisher.publish(twice)
        await publisher.publish(broken)
        await publisher.publish(lost)
        await publisher.publish(future)
    raw = {
        "not-json": b"{not json",
        "unknown-type": json.dumps(unknown).encode(),
        "no-profile": json.dumps(anonymous).encode(),
    }
    await send_raw(kafka_bootstrap, topics[0], *((k.encode(), v) for k, v in raw.items()))

    proc = processor(api, kafka_bootstrap, topics, f"intake.{uuid.uuid4().hex}")
    with capture_logs() as logs:
        async with running(proc, asyncio.Event()) as task:
            await until(task, lambda: proc.stats.accepted + proc.stats.dead >= 10)
    assert (proc.stats.accepted, proc.stats.dead) == (4, 6)

    assert Counter(await campaigns(api, db, pid)) == {"by-id": 1, "by-email": 1, "twice": 1}

    dead = await read_all(kafka_bootstrap, topics[1])
    assert len(dead) == 6
    expected = {
        (b"not-json", "invalid event: message: json_invalid", raw["not-json"]),
        (b"unknown-type", "invalid event: type: literal_error", raw["unknown-type"]),
        (b"no-profile", "invalid event: profile: missing", raw["no-profile"]),
        (
            partition_key(broken.profile),
            "rejected: data.campaign_id: missing",
            broken.model_dump_json().encode(),
        ),
        (
            partition_key(future.profile),
            "rejected: schema_version: unsupported_version",
            future.model_dump_json().encode(),
        ),
        (
            partition_key(lost.profile),
            "rejected: profile: profile_not_found",
            lost.model_dump_json().encode(),
        ),
    }
    # each with its reason and the bytes as published
    assert {(r.key, header(r, "dlq_reason"), r.value) for r in dead} == expected
    sources = {(header(r, "dlq_source_partition"), header(r, "dlq_source_offset")) for r in dead}
    assert len(sources) == 6
    assert {header(r, "dlq_source_topic") for r in dead} == {topics[0]}
    # neither the DLQ's keys and reasons nor the logs carry the email (personal data)
    assert "nobody" not in repr(logs) + repr([r.headers for r in dead])
    assert [e for e in logs if e["event"] == "intake.dead_letter"]


class Meddling:
    """The log, but its first appends fail (a PostgreSQL outage), or a stop follows the first."""

    def __init__(self, log: EventLog, failures: int = 0, stop: asyncio.Event | None = None) -> None:
        self._log = log
        self._failures = failures
        self._stop = stop
        self.topic = log.topic

    async def start(self) -> None:
        await self._log.start()

    async def stop(self) -> None:
        await self._log.stop()

    async def append(self, events: Sequence[Event | EncodedEvent]) -> list[Position]:
        if self._failures:
            self._failures -= 1
            raise ConnectionRefusedError("the database is away")
        positions = await self._log.append(events)
        if self._stop is not None:
            self._stop.set()
        return positions

    async def stage(self, conn: Any, events: Sequence[Event | EncodedEvent]) -> Staged:
        return await self._log.stage(conn, events)

    async def publish(self, staged: Staged) -> list[Position]:
        return await self._log.publish(staged)

    async def append_raw(self, key: bytes, value: bytes) -> Position:
        return await self._log.append_raw(key, value)

    def consumer(self, group: str, on_assign: SeekSource) -> LogConsumer:
        return self._log.consumer(group, on_assign)


async def test_a_restarted_processor_neither_loses_nor_doubles_R18_dlq(
    api: Api, kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    db, pid, _ = await new_profile(api)
    by_id = ProfileRef(profile_id=uuid.UUID(pid))
    good = [opened(by_id, campaign_id=f"r{n}") for n in range(30)]
    async with Publisher(kafka_bootstrap, topic=topics[0]) as publisher:
        await publisher.publish_many(good)  # record batches, one partition: the order holds
    bad = [(f"bad-{n}".encode(), f"{{broken {n}".encode()) for n in range(3)]
    await send_raw(kafka_bootstrap, topics[0], *bad)
    total = len(good) + len(bad)
    group = f"intake.{uuid.uuid4().hex}"

    first_stop = asyncio.Event()
    halting = Meddling(api.runtime.log, stop=first_stop)
    first = processor(api, kafka_bootstrap, topics, group, log=halting, batch_size=4)
    async with running(first, first_stop) as task:
        await task  # stops by itself after one committed batch
    handled_first = first.stats.accepted + first.stats.dead
    assert 0 < handled_first < total

    second = processor(api, kafka_bootstrap, topics, group, batch_size=4)
    async with running(second, asyncio.Event()) as task:
        await until(
            task, lambda: handled_first + second.stats.accepted + second.stats.dead >= total
        )
        await asyncio.sleep(1)  # time to redo anything it would redo
    assert handled_first + second.stats.accepted + second.stats.dead == total

    assert Counter(await campaigns(api, db, pid)) == {e.data["campaign_id"]: 1 for e in good}
    dead = await read_all(kafka_bootstrap, topics[1])
    assert sorted((r.key, r.value) for r in dead) == bad
    assert {header(r, "dlq_reason") for r in dead} == {"invalid event: message: json_invalid"}


async def test_a_batch_that_fails_on_the_way_is_retried_not_skipped_R18_dlq(
    api: Api, kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    db, pid, _ = await new_profile(api)
    by_id = ProfileRef(profile_id=uuid.UUID(pid))
    async with Publisher(kafka_bootstrap, topic=topics[0]) as publisher:
        for n in range(5):
            await publisher.publish(opened(by_id, campaign_id=f"t{n}"))
    await send_raw(kafka_bootstrap, topics[0], (b"bad", b"{broken"))

    flaky = Meddling(api.runtime.log, failures=2)
    proc = processor(
        api, kafka_bootstrap, topics, f"intake.{uuid.uuid4().hex}", log=flaky, retry_pause=0.1
    )
    async with running(proc, asyncio.Event()) as task:
        await until(task, lambda: proc.stats.accepted + proc.stats.dead >= 6)
    assert proc.stats.retries >= 2
    assert (proc.stats.accepted, proc.stats.dead) == (5, 1)

    assert Counter(await campaigns(api, db, pid)) == {f"t{n}": 1 for n in range(5)}
    dead = await read_all(kafka_bootstrap, topics[1])
    assert [(r.key, r.value) for r in dead] == [(b"bad", b"{broken")]


async def test_named_members_are_static_and_leave_when_they_stop(
    api: Api, kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    """`profiles intake --workers N` names its members (PROFILES_GROUP_INSTANCE): static group
    members (KIP-345), so a restarted one takes its partitions back without a rebalance. One
    that stops cleanly still leaves at once, so the others need not wait out its session."""
    group = f"static.{uuid.uuid4().hex[:8]}"
    stops = [asyncio.Event(), asyncio.Event()]
    procs = [
        processor(api, kafka_bootstrap, topics, group, group_instance=f"host-intake-0-{i}")
        for i in range(2)
    ]
    async with running(procs[0], stops[0]) as first, running(procs[1], stops[1]):
        deadline = time.monotonic() + 60
        while len(members := await group_members(kafka_bootstrap, group)) < 2:
            assert not first.done(), members
            assert time.monotonic() < deadline, members
            await asyncio.sleep(0.1)
        # a static member's id is its name and a suffix; the topic is part of the name
        names = sorted(m.rsplit("-", 5)[0] for m in members)
        assert names == [f"host-intake-0-{i}.{topics[0]}" for i in range(2)]
    assert await group_members(kafka_bootstrap, group) == []


async def test_unstorable_nan_and_oversize_events_go_to_the_dlq_and_the_partition_goes_on(
    api: Api, kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    """A NUL (no text column holds it), NaN (JSON has none: it would reach the canonical topic
    as it came) and an event whose canonical record no log may take: each a dead letter with
    its reason, and the event after them on the same partition is applied. The oversize one
    used to be retried for ever as an outage (MessageSizeTooLargeError), blocking its partition.
    """
    db, pid, _ = await new_profile(api)
    key = pid.encode()  # one partition for all of them, in this order

    def raw(campaign: str) -> bytes:
        event = opened(ProfileRef(profile_id=uuid.UUID(pid)), campaign_id=campaign)
        return event.model_dump_json().encode()

    def pixel(pad: str) -> bytes:
        ref = ProfileRef(profile_id=uuid.UUID(pid))
        data = {"pixel_data": {"pad": pad}}
        hit = PublicEvent(id=uuid.uuid4(), type="pixel.hit", source="/t", profile=ref, data=data)
        return hit.model_dump_json().encode()

    nul = raw("n\x00ul")
    nan = raw("nan").replace(b'"campaign_id":"nan"', b'"campaign_id":"nan","value":NaN')
    big = pixel("p" * (1_048_400 - len(pixel(""))))  # fits a record; its canonical one does not
    assert len(big) == 1_048_400
    await send_raw(kafka_bootstrap, topics[0], (key, nul), (key, nan), (key, big))
    async with Publisher(kafka_bootstrap, topic=topics[0]) as publisher:
        await publisher.publish(opened(ProfileRef(profile_id=uuid.UUID(pid)), campaign_id="ok"))

    proc = processor(api, kafka_bootstrap, topics, f"intake.{uuid.uuid4().hex}")
    async with running(proc, asyncio.Event()) as task:
        await until(task, lambda: proc.stats.accepted + proc.stats.dead >= 4)
    assert (proc.stats.accepted, proc.stats.dead, proc.stats.retries) == (1, 3, 0)
    assert await campaigns(api, db, pid) == ["ok"]
    dead = {header(r, "dlq_reason"): r for r in await read_all(kafka_bootstrap, topics[1])}
    assert set(dead) == {
        "rejected: data.campaign_id: nul_character",
        "invalid event: message: json_invalid (NaN or Infinity, which JSON has not)",
        "rejected: event: too_large (payload left out: too large for the dead-letter topic)",
    }
    assert dead["rejected: data.campaign_id: nul_character"].value == nul
    left_out = next(r for reason, r in dead.items() if "too_large" in reason)
    assert left_out.value == b""  # the original is where its headers say
    assert header(left_out, "dlq_source_offset") == "2"
