"""Public event contracts of Subscriber Profiles: what publishers write and consumers read.

Importing this package needs pydantic and nothing else of ours.
"""

from contracts.codec import CURRENT_VERSIONS, DecodeError, Event, decode, encode, headers
from contracts.envelope import SPECVERSION, EnvelopeBase
from contracts.profile_events import (
    ImportMode,
    ProfileImported,
    ProfileImportedData,
    ProfileUpdated,
    ProfileUpdatedData,
)
from contracts.topics import CANONICAL_TOPIC, INTAKE_DLQ_TOPIC, INTAKE_TOPIC

__all__ = [
    "CANONICAL_TOPIC",
    "CURRENT_VERSIONS",
    "INTAKE_DLQ_TOPIC",
    "INTAKE_TOPIC",
    "SPECVERSION",
    "DecodeError",
    "EnvelopeBase",
    "Event",
    "ImportMode",
    "ProfileImported",
    "ProfileImportedData",
    "ProfileUpdated",
    "ProfileUpdatedData",
    "decode",
    "encode",
    "headers",
]
