"""Location from IP (R21): the profile fields a located IP sets, and how they meet manual values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import JsonValue


@dataclass(frozen=True)
class Location:
    """Where an IP address is, as far as the GeoIP database knows; None where it does not."""

    country: str | None  # ISO 3166-1 alpha-2 code, e.g. "GB"
    region: str | None
    city: str | None
    zip: str | None
    timezone: str | None  # IANA name, e.g. "Europe/London"
    latitude: float | None
    longitude: float | None


def tracked_fields(loc: Location) -> dict[str, JsonValue]:
    """The latest-action location fields (R21) that `loc` knows."""
    known: dict[str, JsonValue] = {
        "country": loc.country,
        "region": loc.region,
        "city": loc.city,
        "zip": loc.zip,
        "timezone": loc.timezone,
        "latitude": loc.latitude,
        "longitude": loc.longitude,
    }
    return {name: value for name, value in known.items() if value is not None}


def registration_fields(loc: Location) -> dict[str, JsonValue]:
    """The registration location fields (R21: from Reg IP on import) that `loc` knows."""
    known: dict[str, JsonValue] = {"reg_country": loc.country, "reg_city": loc.city}
    return {name: value for name, value in known.items() if value is not None}


def enrich(
    given: Mapping[str, JsonValue], located: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """Located fields under given ones: a value set manually, even None (unset), wins (R21)."""
    return {**located, **given}
