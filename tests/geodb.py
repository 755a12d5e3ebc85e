"""A tiny GeoIP2-City-compatible database, built at test time (no network, no third-party file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MmdbU16, MmdbU32, MMDBWriter
from netaddr import IPSet  # type: ignore[import-untyped]  # netaddr ships no types

from domain.geo import Location

# network, an address in it, and what that address should resolve to
_NETWORKS: tuple[tuple[str, str, Location, str, int], ...] = (
    (
        "81.2.69.0/24",
        "81.2.69.142",
        Location("GB", "England", "London", "SW1A", "Europe/London", 51.5142, -0.0931),
        "EU",
        2643743,
    ),
    (
        "192.0.2.0/24",
        "192.0.2.10",
        Location("DE", "Berlin", "Berlin", "10115", "Europe/Berlin", 52.5244, 13.4105),
        "EU",
        2950159,
    ),
    (
        "198.51.100.0/24",
        "198.51.100.7",
        Location(
            "US", "California", "San Francisco", "94107", "America/Los_Angeles", 37.7697, -122.3933
        ),
        "NA",
        5391959,
    ),
    (
        "203.0.113.0/24",
        "203.0.113.99",
        Location("JP", "Tokyo", "Tokyo", "100-0001", "Asia/Tokyo", 35.6895, 139.6917),
        "AS",
        1850147,
    ),
    (
        "2001:db8::/32",
        "2001:db8::1",
        Location("FR", "Île-de-France", "Paris", "75001", "Europe/Paris", 48.8534, 2.3488),
        "EU",
        2988507,
    ),
)


def _names(name: str) -> dict[str, str]:
    return {"en": name}


def _record(loc: Location, continent: str, geoname_id: int) -> dict[str, Any]:
    """One record in the GeoIP2 City schema; integer types as MaxMind's own files store them."""
    country = {
        "geoname_id": MmdbU32(geoname_id + 1),
        "iso_code": loc.country,
        "names": _names(str(loc.country)),
    }
    return {
        "continent": {
            "code": continent,
            "geoname_id": MmdbU32(geoname_id + 2),
            "names": _names(continent),
        },
        "country": country,
        "registered_country": country,
        "subdivisions": [
            {
                "geoname_id": MmdbU32(geoname_id + 3),
                "iso_code": "X",
                "names": _names(str(loc.region)),
            }
        ],
        "city": {"geoname_id": MmdbU32(geoname_id), "names": _names(str(loc.city))},
        "postal": {"code": loc.zip},
        "location": {
            "accuracy_radius": MmdbU16(20),
            "latitude": loc.latitude,
            "longitude": loc.longitude,
            "time_zone": loc.timezone,
        },
    }


def build_city_db(path: Path) -> dict[str, Location]:
    """Write a GeoIP2-City database to `path`; return each test address and where it is."""
    # IPv6 tree with IPv4 at ::/96, like MaxMind's City files, so both families can be looked up
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoIP2-City",
        languages=["en"],
        description="subscriber-profiles test City database",
    )
    for network, _, loc, continent, geoname_id in _NETWORKS:
        writer.insert_network(IPSet([network]), _record(loc, continent, geoname_id))
    writer.to_db_file(str(path))
    return {address: loc for _, address, loc, _, _ in _NETWORKS}
