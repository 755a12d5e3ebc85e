"""Identity rules R5 and R6."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import ValidationError
from domain.identity import md5_id, normalise_email, placeholder_email, xxh_id


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
