"""GeoIP enrichment (R21, DESIGN decision 6) against a City database built at test time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import geoip2.database
import geoip2.models
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet  # type: ignore[import-untyped]  # netaddr ships no types
from structlog.testing import capture_logs

from domain.geo import Location
from services.geo import GeoDatabaseError, GeoLocator, open_locator
from tests.geodb import build_city_db

LONDON_IP = "81.2.69.142"


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Location]]:
    path = tmp_path_factory.mktemp("geoip") / "City.mmdb"
    return path, build_city_db(path)


def opened(path: Path, **options: Any) -> GeoLocator:
    geo = open_locator(path, **options)
    assert geo is not None  # a path always gives a locator
    return geo


@pytest.fixture
def locator(city_db: tuple[Path, dict[str, Location]]) -> Iterator[GeoLocator]:
    with opened(city_db[0]) as geo:
        yield geo


def test_each_network_resolves_to_its_location_R21(
    city_db: tuple[Path, dict[str, Location]], locator: GeoLocator
) -> None:
    _, expected = city_db
    assert len(expected) >= 4
    for ip, loc in expected.items():
        assert locator.locate(ip) == loc


def test_any_address_in_a_network_resolves_like_it_R21(locator: GeoLocator) -> None:
    london = locator.locate(LONDON_IP)
    assert london is not None
    assert london.country == "GB"
    assert london.timezone == "Europe/London"
    assert locator.locate("81.2.69.1") == london
    assert locator.locate(" 81.2.69.255 ") == london
    assert locator.locate(f"::ffff:{LONDON_IP}") == london


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",  # public, but not in this database
        "2001:db9::1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "100.64.0.1",
        "127.0.0.1",
        "169.254.1.1",
        "0.0.0.0",  # noqa: S104  # an address to locate, not one to bind
        "224.0.0.1",
        "::1",
        "fe80::1%eth0",
        "fd00::1",
        "::ffff:10.0.0.1",
        "",
        "not-an-ip",
        "999.1.1.1",
        "81.2.69.0/24",
        "81.2.69.142:443",
        "1" * 10_000,
    ],
)
def test_unknown_private_or_garbage_address_has_no_location_R21(
    locator: GeoLocator, ip: str
) -> None:
    assert locator.locate(ip) is None


def test_no_path_means_no_ip_geolocation() -> None:
    assert open_locator(None) is None


def test_missing_database_is_a_clear_startup_error(tmp_path: Path) -> None:
    missing = tmp_path / "GeoLite2-City.mmdb"
    with pytest.raises(GeoDatabaseError, match="does not exist") as caught:
        open_locator(missing)
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize("content", [b"", b"not a maxmind database" * 100])
def test_corrupt_database_is_a_clear_startup_error(tmp_path: Path, content: bytes) -> None:
    corrupt = tmp_path / "City.mmdb"
    corrupt.write_bytes(content)
    with pytest.raises(GeoDatabaseError, match="not a MaxMind DB file") as caught:
        open_locator(corrupt)
    assert str(corrupt) in str(caught.value)


def test_a_database_without_cities_is_refused(tmp_path: Path) -> None:
    asn = tmp_path / "ASN.mmdb"
    writer = MMDBWriter(database_type="GeoLite2-ASN")
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"autonomous_system_number": 20712})
    writer.to_db_file(str(asn))
    with pytest.raises(GeoDatabaseError, match="not a City database"):
        open_locator(asn)


class CountingReader(geoip2.database.Reader):
    """A real reader that counts the lookups which reach the database."""

    lookups = 0

    def city(self, ip_address: str | IPv4Address | IPv6Address) -> geoip2.models.City:
        self.lookups += 1
        return super().city(ip_address)


def test_repeated_lookups_are_served_from_a_bounded_lru_cache(
    city_db: tuple[Path, dict[str, Location]],
) -> None:
    reader = CountingReader(str(city_db[0]))
    with GeoLocator(reader, cache_size=2) as geo:
        a, b, c = "81.2.69.1", "81.2.69.2", "81.2.69.3"
        for ip in (a, b, a, a, b):
            geo.locate(ip)
        assert reader.lookups == 2
        geo.locate(c)  # evicts a's entry, the least recently used
        geo.locate(b)
        assert reader.lookups == 3
        geo.locate(a)
        assert reader.lookups == 4


def test_concurrent_lookups_agree(city_db: tuple[Path, dict[str, Location]]) -> None:
    path, expected = city_db
    failures: list[str] = []

    def hammer(geo: GeoLocator) -> None:
        for i in range(2_000):
            ip = list(expected)[i % len(expected)]
            if geo.locate(ip) != expected[ip]:
                failures.append(ip)

    with opened(path, cache_size=3) as geo:
        threads = [threading.Thread(target=hammer, args=(geo,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []


def test_lookups_log_nothing(locator: GeoLocator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        for ip in (LONDON_IP, "8.8.8.8", "10.0.0.1", "garbage"):
            locator.locate(ip)
    assert logs == []
    assert caplog.records == []


def _rate(geo: GeoLocator, ips: list[str], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        geo.locate(ips[i % len(ips)])
    return n / (time.perf_counter() - start)


def test_lookup_rate(
    city_db: tuple[Path, dict[str, Location]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = city_db
    hosts = [f"{net}.{host}" for net in ("81.2.69", "192.0.2", "198.51.100") for host in range(256)]
    rates: dict[str, float] = {}
    for name in ("MODE_MMAP", "MODE_MEMORY", "MODE_AUTO"):
        with opened(path, cache_size=0, mode=getattr(geoip2.database, name)) as geo:
            rates[f"{name}, uncached (5k)"] = _rate(geo, hosts, 5_000)
    with opened(path) as geo:
        rates["MODE_AUTO, LRU cache (100k)"] = _rate(geo, hosts, 100_000)
    with capsys.disabled():
        print()
        for label, rate in rates.items():
            print(f"GeoIP lookups/s, {label}: {rate:,.0f}")
    assert min(rates.values()) > 500  # a smoke bound only: timings vary with the machine
