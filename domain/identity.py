"""Identity rules (R4-R6): derived identifiers, email and phone normalisation."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from uuid import UUID

import xxhash

from domain.errors import ValidationError, Violation


def distinct(ids: Iterable[UUID]) -> list[UUID]:
    """The ids without repeats, in the order they first come.

    Keyed by each id's integer: a UUID hashes in Python code (`uuid.py`), an int in C, and a
    projector dedupes every id of a batch (0.33 µs an id the other way).
    """
    return list({i.int: i for i in ids}.values())


def md5_id(profile_id: UUID) -> str:
    """The MD5 identifier of a profile (R5): hex MD5 of the canonical profile id text."""
    return hashlib.md5(str(profile_id).encode(), usedforsecurity=False).hexdigest()


def xxh_id(profile_id: UUID) -> str:
    """The XXH identifier of a profile (R5): hex XXH3-64 of the canonical profile id text."""
    return xxhash.xxh3_64_hexdigest(str(profile_id).encode())


def placeholder_email(profile_id: UUID) -> str:
    """What a profile without email reads as (R6)."""
    return f"{profile_id}@localhost"


def normalise_email(raw: str) -> str:
    """Trim and lower-case an email (R6 compares case-insensitively); reject what is not one."""
    email = raw.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 254:
        raise ValidationError([Violation("email", "email_syntax", raw)])
    return email


_PHONE_PUNCTUATION = re.compile(r"[\s\-.()]")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def normalise_phone(raw: str) -> str:
    """A phone in E.164 (R6): punctuation dropped, a leading 00 read as +; the + is required."""
    phone = _PHONE_PUNCTUATION.sub("", raw)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not _E164.fullmatch(phone):
        raise ValidationError([Violation("phones", "phone_e164", raw)])
    return phone
