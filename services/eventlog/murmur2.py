"""Kafka's default partitioner hash (murmur2, seed 0x9747b28c), at half the cost of aiokafka's.

aiokafka's version masks after every step and reads one byte at a time (about 8 µs a 36-byte
key here); this one reads the key as little-endian words in one `struct` call and masks only
where a product can outgrow 32 bits (about 4 µs). Every profile's first event in a process
pays it once. `tests/unit/test_murmur2.py` checks it against aiokafka's on random keys.
"""

from __future__ import annotations

import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The unsigned 32-bit murmur2 of `data`, as Kafka's Java client computes it."""
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        base = words << 2
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)
