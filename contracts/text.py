"""Text PostgreSQL cannot store: the NUL character.

A `text` value cannot hold U+0000 and `jsonb` refuses the `\\u0000` escape, so a string
holding it fails the statement that writes it, or, in a `json` column, every later read of the
row as `jsonb` (a profile's history and export answered 500 for good after one pixel hit). It
is refused where it comes in, naming each place, never stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, field_validator
from pydantic_core import PydanticCustomError

NUL = "\x00"
REPLACEMENT = "\ufffd"


def nul_places(value: object, place: str = "") -> list[str]:
    """The places (dotted, `items.2.email`; "" for `value` itself) of every string in a JSON
    value that holds a NUL, keys included."""
    found: list[str] = []
    _walk(value, place, found)
    return found


def without_nul(value: Any) -> Any:
    """The JSON value with each NUL in its strings and keys replaced by U+FFFD, the character
    that stands for one that cannot be kept (for the pixel, which records every hit it can)."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT)
    if isinstance(value, Mapping):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value


def _walk(value: object, place: str, found: list[str]) -> None:
    if isinstance(value, str):
        if NUL in value:
            found.append(place)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key).replace(NUL, "\\u0000")  # a place is echoed: never the NUL itself
            inner = f"{place}.{name}" if place else name
            if isinstance(key, str) and NUL in key:
                found.append(inner)
            _walk(item, inner, found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, f"{place}.{index}" if place else str(index), found)


class StorableText(BaseModel):
    """A request body whose every field is refused when a string in it holds a NUL (for the
    bodies FastAPI validates; routes reading a body themselves name each place instead,
    `services.http_common.nul_errors`)."""

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if nul_places(value):
            raise PydanticCustomError("nul_character", "holds a NUL character (\\u0000)")
        return value
