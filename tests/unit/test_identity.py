"""Identity rules R5 and R6."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import ValidationError
from domain.identity import (
    distinct,
    md5_id,
    normalise_email,
    normalise_phone,
    placeholder_email,
    xxh_id,
)


def test_derived_ids_are_stable_and_distinct_R5() -> None:
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    assert md5_id(a) == md5_id(uuid.UUID(int=1))
    assert xxh_id(a) == xxh_id(uuid.UUID(int=1))
    assert md5_id(a) != md5_id(b)
    assert xxh_id(a) != xxh_id(b)
    assert len(md5_id(a)) == 32
    assert len(xxh_id(a)) == 16


def test_missing_email_reads_as_localhost_R6() -> None:
    pid = uuid.UUID(int=7)
    assert placeholder_email(pid) == f"{pid}@localhost"


def test_email_is_trimmed_and_case_folded_R6() -> None:
    assert normalise_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"


@pytest.mark.parametrize("bad", ["", "no-at-sign", "a@b", "a b@example.com", "@example.com"])
def test_bad_email_names_field_rule_value_R6(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_email(bad)
    (violation,) = caught.value.violations
    assert (violation.field, violation.rule, violation.value) == ("email", "email_syntax", bad)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+49 30 1234567", "+49301234567"),
        ("0049 (30) 123-45.67", "+49301234567"),
        ("+1 (555) 010-9999", "+15550109999"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
        (" +44\t20 7946 0958 ", "+442079460958"),
    ],
)
def test_phone_normalised_to_e164_R6(raw: str, e164: str) -> None:
    assert normalise_phone(raw) == e164


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "030 1234567",  # no country code: + or 00 is required
        "+1234567",  # 7 digits: too short
        "+1234567890123456",  # 16 digits: too long
        "+0301234567",  # a country code never starts with 0
        "000301234567",
        "+49 30 12a4567",
        "++49301234567",
        "+49/30/1234567",
        "+４９３０１２３４５６７",  # noqa: RUF001 (full-width digits are not ASCII digits)
    ],
)
def test_bad_phone_names_field_rule_value_R6(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_phone(bad)
    (violation,) = caught.value.violations
    assert (violation.field, violation.rule, violation.value) == ("phones", "phone_e164", bad)


def test_distinct_keeps_each_id_once_in_first_order_DESIGN3() -> None:
    """A batch's ids without repeats, as the dedupe COPY takes them (event ids dedupe)."""
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert distinct([b, a, b, c, a]) == [b, a, c]
    assert distinct([]) == []
