"""Walking the OpenAPI and AsyncAPI documents in tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def refs(value: Any) -> Iterator[str]:
    """Every `$ref` in a JSON document, nested ones too."""
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for inner in value.values():
            yield from refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from refs(inner)
