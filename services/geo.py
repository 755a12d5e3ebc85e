"""IP geolocation at intake (DESIGN decision 6) from a GeoIP2/GeoLite2 City database.

Addresses are personal data: nothing here logs them, and no error raised here carries one.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from pathlib import Path
from types import TracebackType
from typing import Self, TypeAlias

import geoip2.database
import geoip2.errors
import maxminddb

from domain.geo import Location

DEFAULT_CACHE_SIZE = 65_536
_LONGEST_ADDRESS = 64  # IPv6 text with an IPv4 tail and a zone id fits easily

# Never in a GeoIP database worth asking: RFC 1918, CGNAT, unique-local. (Documentation ranges
# are left to the database, so a test database can hold them.)
_PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)

_Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_NOWHERE = Location(None, None, None, None, None, None, None)


class GeoDatabaseError(RuntimeError):
    """The configured GeoIP database cannot be used: a startup configuration error."""


class GeoLocator:
    """IP address → Location, with a bounded LRU cache in front of the database."""

    def __init__(
        self, reader: geoip2.database.Reader, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        self._reader = reader
        self._cache: OrderedDict[str, Location | None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def locate(self, ip: str) -> Location | None:
        """Where `ip` is; None if invalid, private or not in the database. Never raises on input."""
        if len(ip) > _LONGEST_ADDRESS:  # garbage; kept out of the cache, whose bound is a count
            return None
        with self._lock:
            if ip in self._cache:
                self._cache.move_to_end(ip)
                return self._cache[ip]
        found = self._lookup(ip)
        with self._lock:
            self._cache[ip] = found
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return found

    def _lookup(self, ip: str) -> Location | None:
        address = _routable(ip)
        if address is None:
            return None
        try:
            city = self._reader.city(address)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None
        loc = Location(
            country=city.country.iso_code,
            region=city.subdivisions.most_specific.name,
            city=city.city.name,
            zip=city.postal.code,
            timezone=city.location.time_zone,
            latitude=city.location.latitude,
            longitude=city.location.longitude,
        )
        return None if loc == _NOWHERE else loc

    def close(self) -> None:
        """Close the database."""
        self._reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _routable(ip: str) -> _Address | None:
    """`ip` parsed, unless it is garbage or an address no GeoIP database locates."""
    try:
        address: _Address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    local = (
        address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or any(address in net for net in _PRIVATE)
    )
    return None if local else address


def open_locator(
    path: Path | None,
    cache_size: int = DEFAULT_CACHE_SIZE,
    *,
    mode: int = geoip2.database.MODE_AUTO,
) -> GeoLocator | None:
    """A locator over the City database at `path`; None when no path is set (no IP geolocation)."""
    if path is None:
        return None
    try:
        # MODE_AUTO takes maxminddb's C extension (mmap) when installed: ~4x the lookups/s of the
        # pure-Python MODE_MMAP or MODE_MEMORY, which measure alike (test_geoip.py prints them)
        reader = geoip2.database.Reader(str(path), mode=mode)
    except FileNotFoundError as e:
        raise GeoDatabaseError(f"GeoIP database {path} does not exist (PROFILES_GEOIP_DB)") from e
    except (OSError, maxminddb.InvalidDatabaseError, ValueError) as e:
        raise GeoDatabaseError(f"GeoIP database {path} is not a MaxMind DB file: {e}") from e
    kind = reader.metadata().database_type
    if "City" not in kind:
        reader.close()
        raise GeoDatabaseError(f"GeoIP database {path} is {kind!r}, not a City database")
    return GeoLocator(reader, cache_size)
