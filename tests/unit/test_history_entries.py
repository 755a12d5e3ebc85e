"""Timeline entries (R18): which kind an event makes, and what its summary shows."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bench.subscription_bench import Workload
from domain.history import Entry, entry
from tests.factories import imported, opened, status_changed, updated


def _summary(line: Entry | None) -> Any:
    assert line is not None
    return json.loads(line.summary)


def test_an_import_names_its_fields_and_keeps_its_mode_R18() -> None:
    event = imported(
        uuid.uuid4(), 0, fields={"city": "Oslo", "first_name": "Kari"}, custom={"score": 3}
    )
    line = entry(event)
    assert line is not None
    assert line.kind == "import"
    summary = _summary(line)
    assert summary["import_mode"] == event.data.import_mode
    assert summary["fields"] == ["city", "first_name"]
    assert summary["custom"] == ["score"]
    assert b"Oslo" not in line.summary  # the value stays in the profile, not the timeline


def test_a_profile_change_names_what_it_set_R18() -> None:
    line = entry(updated(uuid.uuid4(), 1, set={"last_name": "Berg"}))
    assert line is not None
    assert (line.kind, _summary(line)) == ("profile", {"set": ["last_name"]})


def test_other_events_show_their_data_without_its_defaults_R18() -> None:
    """The summary is JSON written straight from the event's model: the same object as its
    data dumped for JSON without the defaults (what the timeline showed before)."""
    pid = uuid.uuid4()
    events: list[Any] = Workload(7).profile(pid, 60, heavy=True)  # adds, evictions, R13 moves
    events += Workload(8).profile(pid, 60, heavy=False)  # status, categories, priority, delete
    events += [opened(pid, 3), status_changed(pid, 4, "unsubscribed")]
    assert {e.type for e in events} >= {"subscription.added", "subscription.evicted"}
    for event in events:
        expected = event.data.model_dump(mode="json", exclude_defaults=True)
        assert _summary(entry(event)) == expected, event.type
