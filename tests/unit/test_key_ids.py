"""API key ids (R28) can always be given to `profiles keys revoke` as a plain argument."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from services import api_keys


def test_a_key_id_never_starts_with_a_dash_R28(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: Iterator[str] = iter(["-OeSnzjRTV6T", "--abcdefghij", "k0eSnzjRTV6T"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda _n: next(drawn))
    assert api_keys.new_key_id() == "k0eSnzjRTV6T"  # the dashed draws are thrown away


def test_key_ids_are_twelve_url_safe_characters_R28() -> None:
    ids = {api_keys.new_key_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == api_keys.ID_CHARS and not i.startswith("-") for i in ids)
    assert set("".join(ids)) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
