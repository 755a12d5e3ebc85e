"""Domain errors.

DomainError
 └── ValidationError  (field, rule, value) — input breaks a rule of SPEC.md
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class DomainError(Exception):
    """Base of every error the domain raises."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: which field, which rule, and the offending value."""

    field: str
    rule: str
    value: object


class ValidationError(DomainError):
    """Input breaks one or more rules; `violations` lists each of them."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.rule}" for v in violations))
        self.violations = violations


def collect(violations: list[Violation], check: Callable[[], T], fallback: T) -> T:
    """Run `check`; on ValidationError add its violations and return `fallback` instead.

    Lets a validator report every broken rule of a request at once, not the first one.
    """
    try:
        return check()
    except ValidationError as error:
        violations.extend(error.violations)
        return fallback
