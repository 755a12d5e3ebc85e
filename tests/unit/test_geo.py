"""Location from IP, rule R21: which fields a location sets, and that manual values are kept."""

from __future__ import annotations

from domain.geo import Location, enrich, registration_fields, tracked_fields

LONDON = Location("GB", "England", "London", "SW1A", "Europe/London", 51.5142, -0.0931)


def test_latest_action_location_sets_tracked_fields_R21() -> None:
    assert tracked_fields(LONDON) == {
        "country": "GB",
        "region": "England",
        "city": "London",
        "zip": "SW1A",
        "timezone": "Europe/London",
        "latitude": 51.5142,
        "longitude": -0.0931,
    }


def test_unknown_parts_of_a_location_set_nothing_R21() -> None:
    country_only = Location("NL", None, None, None, None, None, None)
    assert tracked_fields(country_only) == {"country": "NL"}
    assert registration_fields(country_only) == {"reg_country": "NL"}


def test_reg_ip_sets_registration_fields_R21() -> None:
    assert registration_fields(LONDON) == {"reg_country": "GB", "reg_city": "London"}


def test_zero_coordinates_are_a_location_R21() -> None:
    null_island = Location(None, None, None, None, None, 0.0, 0.0)
    assert tracked_fields(null_island) == {"latitude": 0.0, "longitude": 0.0}


def test_manual_location_wins_over_ip_R21() -> None:
    given = {"city": "Manchester", "email": "ann@example.com"}
    assert enrich(given, tracked_fields(LONDON)) == {
        **tracked_fields(LONDON),
        "city": "Manchester",
        "email": "ann@example.com",
    }


def test_explicit_unset_wins_R21() -> None:
    assert enrich({"zip": None}, tracked_fields(LONDON))["zip"] is None


def test_located_fields_fill_only_what_was_not_given_R21() -> None:
    assert enrich({}, {"reg_country": "GB"}) == {"reg_country": "GB"}
    assert enrich({"reg_country": "IE"}, {"reg_country": "GB", "reg_city": "London"}) == {
        "reg_country": "IE",
        "reg_city": "London",
    }


def test_enrich_leaves_its_inputs_alone_R21() -> None:
    given = {"city": "Leeds"}
    located = tracked_fields(LONDON)
    enrich(given, located)
    assert given == {"city": "Leeds"}
    assert located == tracked_fields(LONDON)
