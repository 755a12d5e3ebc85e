"""Our murmur2 chooses the partitions Kafka's default partitioner chooses (DESIGN: keyed by
profile id), for every key length and byte value."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from services.eventlog.murmur2 import murmur2


@given(st.binary(max_size=80))
def test_matches_aiokafka_on_any_bytes(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


def test_matches_on_profile_id_keys_and_known_java_values() -> None:
    keys = [str(uuid.UUID(int=n * 7919)).encode() for n in range(500)]
    assert [murmur2(k) for k in keys] == [aiokafka_murmur2(k) for k in keys]
    # Values of org.apache.kafka.common.utils.Utils.murmur2, as unsigned 32-bit integers
    assert murmur2(b"21") == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == (-985981536) & 0xFFFFFFFF
    assert murmur2(b"") == 275646681
