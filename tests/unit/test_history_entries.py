"""Timeline entries (R18): which kind an event makes, and what its summary shows."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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
    assert "Oslo" not in line.summary  # the value stays in the profile, not the timeline


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


_NAMES = st.lists(st.sampled_from(["city", "first_name", "score", "tier", "x"]), max_size=3)
_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans())
_MAP = st.dictionaries(st.sampled_from(["city", "first_name", "score", "tier"]), _VALUES)
_PHONES = st.lists(st.sampled_from(["+33612345678", "+4915112345678"]), max_size=2)


_CHANGES = st.fixed_dictionaries(
    {
        "set": _MAP,
        "unset": _NAMES.map(tuple),
        "custom_set": _MAP,
        "increment": st.dictionaries(st.sampled_from(["score", "visits"]), st.integers(-5, 5)),
        "tags_add": st.dictionaries(
            st.sampled_from(["tags"]), st.lists(st.text(max_size=3)).map(tuple)
        ),
        "email": st.sampled_from([None, "a@example.com"]),
        "email_removed": st.booleans(),
        "phones_add": _PHONES.map(tuple),
    }
)
_IMPORTS = st.fixed_dictionaries(
    {
        "import_mode": st.sampled_from(["api", "file", "manual", "push"]),
        "created": st.booleans(),
        "email": st.sampled_from([None, "a@example.com"]),
        "phones": _PHONES.map(tuple),
        "fields": _MAP,
        "custom": _MAP,
        "status": st.sampled_from([None, "subscribed", "unconfirmed"]),
        "located": _MAP,
    }
)


@settings(max_examples=300, deadline=None)
@given(data=_CHANGES)
def test_a_change_names_exactly_what_the_model_holds_R18(data: dict[str, Any]) -> None:
    """The line is read from the model's attributes, not its serializer: it must show what
    the serializer shows without defaults, each value map replaced by its sorted names."""
    event = updated(uuid.uuid4(), 1, **data)
    assert _summary(entry(event)) == _named(event.data)


@settings(max_examples=200, deadline=None)
@given(data=_IMPORTS)
def test_an_import_names_exactly_what_the_model_holds_R18(data: dict[str, Any]) -> None:
    event = imported(uuid.uuid4(), 0, **data)
    assert _summary(entry(event)) == _named(event.data)


def _named(data: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = data.model_dump(mode="json", exclude_defaults=True)
    return {k: sorted(v) if isinstance(v, dict) else v for k, v in dumped.items()}
