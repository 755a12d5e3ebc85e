"""The event envelope: CloudEvents 1.0 attributes plus our routing extensions.

Personal data never appears in the envelope: `subject` is the profile id, nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


class EnvelopeBase(BaseModel):
    """Attributes every event carries; subclasses fix `type`, `schema_version` and `data`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: UUID = Field(description="Unique event id; a second publish of the same id is a duplicate.")
    source: str = Field(min_length=1, max_length=200, description="URI-reference of the producer.")
    type: str
    schema_version: int = Field(ge=1, description="Version of `data` for this `type`.")
    time: AwareDatetime = Field(description="When it happened; folds use this, never a clock.")
    subject: UUID = Field(description="The profile id the event is about (the Kafka key).")
    database_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    datacontenttype: Literal["application/json"] = "application/json"


def occurred_at(envelope: EnvelopeBase) -> datetime:
    """The event's own time, the only clock a fold may read."""
    return envelope.time
