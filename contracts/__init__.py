"""Public event contracts of Subscriber Profiles: what publishers write and consumers read.

Importing this package needs pydantic and nothing else of ours.
"""

from contracts.codec import CURRENT_VERSIONS, DecodeError, Event, decode, encode, headers
from contracts.database_events import (
    DatabaseCreated,
    DatabaseCreatedData,
    FieldAdded,
    FieldAddedData,
    FieldRemoved,
    FieldRemovedData,
    FieldTypeName,
    database_subject,
)
from contracts.envelope import SPECVERSION, EnvelopeBase
from contracts.profile_events import (
    GlobalStatus,
    ImportMode,
    ProfileDeleted,
    ProfileDeletedData,
    ProfileImported,
    ProfileImportedData,
    ProfileStatusChanged,
    ProfileStatusChangedData,
    ProfileUpdated,
    ProfileUpdatedData,
    StatusCause,
)
from contracts.topics import CANONICAL_TOPIC, INTAKE_DLQ_TOPIC, INTAKE_TOPIC

__all__ = [
    "CANONICAL_TOPIC",
    "CURRENT_VERSIONS",
    "INTAKE_DLQ_TOPIC",
    "INTAKE_TOPIC",
    "SPECVERSION",
    "DatabaseCreated",
    "DatabaseCreatedData",
    "DecodeError",
    "EnvelopeBase",
    "Event",
    "FieldAdded",
    "FieldAddedData",
    "FieldRemoved",
    "FieldRemovedData",
    "FieldTypeName",
    "GlobalStatus",
    "ImportMode",
    "ProfileDeleted",
    "ProfileDeletedData",
    "ProfileImported",
    "ProfileImportedData",
    "ProfileStatusChanged",
    "ProfileStatusChangedData",
    "ProfileUpdated",
    "ProfileUpdatedData",
    "StatusCause",
    "database_subject",
    "decode",
    "encode",
    "headers",
]
