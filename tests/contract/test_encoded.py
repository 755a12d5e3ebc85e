"""`profile.imported` encoded without a model decodes to the event the model would have been."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import JsonValue

from contracts import (
    ProfileImported,
    ProfileImportedData,
    as_encoded,
    decode,
    encode,
    encoded,
    headers,
)

CASES: list[dict[str, object]] = [
    {"email": None, "phones": (), "fields": {}, "custom": {}, "status": None, "located": {}},
    {
        "email": "anna.müller@example.com",
        "phones": ("+33612345678", "+4915112345678"),
        "fields": {"first_name": "Anna", "birthday": "1990-04-01", "reg_ip": "81.2.69.142"},
        "custom": {"score": 12, "ratio": 0.5, "vip": True, "tags": ["a", "b"], "gone": None},
        "status": "hard_bounced",
        "located": {"reg_city": "London", "reg_country": "GB"},
    },
    {
        "email": "x@example.org",
        "phones": ("+12025550123",),
        "fields": {"note": 'quotes " and \\ and \u2028 and emoji 🎉'},
        "custom": {"nested": {"deep": [1, 2.5, "three", None, {"k": False}]}, "big": 2**62},
        "status": "subscribed",
        "located": {},
    },
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    "when",
    [datetime(2026, 12, 2, 1, 2, 3, 456789, tzinfo=UTC),
     datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))],
)  # fmt: skip
def test_fast_profile_imported_decodes_like_the_model(
    case: dict[str, JsonValue], when: datetime
) -> None:
    envelope = {
        "id": uuid.uuid4(),
        "source": "/imports/job-1",
        "time": when,
        "subject": uuid.uuid4(),
        "database_id": "shop.main",
    }
    data = {"import_mode": "file", "created": True, **case}
    fast = encoded.profile_imported(**envelope, **data)  # type: ignore[arg-type]
    model = ProfileImported(**envelope, data=ProfileImportedData(**data))  # type: ignore[arg-type,unused-ignore]
    assert decode(fast.value) == model
    assert decode(fast.value) == decode(encode(model))
    assert fast.headers() == headers(model)
    assert as_encoded(model) == encoded.EncodedEvent(
        model.id, model.subject, "profile.imported", 1, encode(model)
    )
    assert as_encoded(fast) is fast


GOLDEN = sorted((Path(__file__).parent / "golden").glob("*.json"))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_any_type_encoded_from_checked_data_decodes_like_the_model(path: Path) -> None:
    """What the intake appends: envelope values plus `data` as its model dumps it."""
    model = decode(path.read_bytes())
    fast = encoded.event(
        type=model.type,
        schema_version=model.schema_version,
        id=model.id,
        source=model.source,
        time=model.time,
        subject=model.subject,
        database_id=model.database_id,
        data=model.data.model_dump(mode="json"),
    )
    assert decode(fast.value) == model
    assert fast.headers() == headers(model)
