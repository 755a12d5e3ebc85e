"""Timeline entries (R18): which kind an event makes, and what its summary shows."""

from __future__ import annotations

import uuid

from domain.history import entry
from tests.factories import imported, updated


def test_an_import_names_its_fields_and_keeps_its_mode_R18() -> None:
    event = imported(
        uuid.uuid4(), 0, fields={"city": "Oslo", "first_name": "Kari"}, custom={"score": 3}
    )
    line = entry(event)
    assert line is not None
    assert line.kind == "import"
    assert line.summary["import_mode"] == event.data.import_mode
    assert line.summary["fields"] == ["city", "first_name"]
    assert line.summary["custom"] == ["score"]
    assert "Oslo" not in repr(line.summary)  # the value stays in the profile, not the timeline


def test_a_profile_change_names_what_it_set_R18() -> None:
    line = entry(updated(uuid.uuid4(), 1, set={"last_name": "Berg"}))
    assert line is not None
    assert (line.kind, line.summary) == ("profile", {"set": ["last_name"]})
