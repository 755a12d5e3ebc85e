"""Profile lifecycle events: `profile.imported` and `profile.updated`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from contracts.envelope import EnvelopeBase

ImportMode = Literal["manual", "api", "file", "push"]
GlobalStatus = Literal[
    "subscribed",
    "unsubscribed",
    "complainer",
    "hard_bounced",
    "unconfirmed",
    "suspended",
    "invalid",
]
StatusCause = Literal["api", "import", "campaign", "suppression"]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProfileImportedData(_Data):
    """A profile was created, or an existing one matched and updated, by an import."""

    import_mode: ImportMode
    created: bool = Field(description="True when the import created the profile.")
    email: str | None = Field(default=None, description="Normalised email, or null.")
    phones: tuple[str, ...] = Field(default=(), description="E.164 phone numbers.")
    fields: dict[str, JsonValue] = Field(
        default_factory=dict, description="Standard fields, by name; null unsets."
    )
    custom: dict[str, JsonValue] = Field(
        default_factory=dict, description="Custom fields of the database, by name; null unsets."
    )
    status: GlobalStatus | None = Field(
        default=None, description="Global status the import sets (R7); null leaves it."
    )
    located: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Location fields found from an IP at intake (R21); a manual value wins.",
    )


class ProfileUpdatedData(_Data):
    """Fields of an existing profile were set or unset."""

    set: dict[str, JsonValue] = Field(default_factory=dict)
    unset: tuple[str, ...] = ()
    custom_set: dict[str, JsonValue] = Field(default_factory=dict)
    custom_unset: tuple[str, ...] = ()
    increment: dict[str, int | float] = Field(
        default_factory=dict, description="Custom Number/Float fields to add to (absent = 0)."
    )
    tags_add: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Tags to add to custom Tags fields, in order."
    )
    tags_remove: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    email: str | None = Field(default=None, description="New normalised email, if it changed.")
    email_removed: bool = Field(default=False, description="The profile no longer has an email.")
    phones_add: tuple[str, ...] = ()
    phones_remove: tuple[str, ...] = ()


class ProfileStatusChangedData(_Data):
    """The global status changed (R7); `cause` says what changed it."""

    status: GlobalStatus
    cause: StatusCause


class ProfileDeletedData(_Data):
    """The profile was deleted (R26): read models forget it, its identities are free."""


class ProfileImported(EnvelopeBase):
    """`profile.imported`, current version."""

    type: Literal["profile.imported"] = "profile.imported"
    schema_version: Literal[1] = 1
    data: ProfileImportedData


class ProfileUpdated(EnvelopeBase):
    """`profile.updated`, current version."""

    type: Literal["profile.updated"] = "profile.updated"
    schema_version: Literal[1] = 1
    data: ProfileUpdatedData


class ProfileStatusChanged(EnvelopeBase):
    """`profile.status_changed`, current version."""

    type: Literal["profile.status_changed"] = "profile.status_changed"
    schema_version: Literal[1] = 1
    data: ProfileStatusChangedData


class ProfileDeleted(EnvelopeBase):
    """`profile.deleted`, current version."""

    type: Literal["profile.deleted"] = "profile.deleted"
    schema_version: Literal[1] = 1
    data: ProfileDeletedData = Field(default_factory=ProfileDeletedData)
