"""Profile lifecycle events: `profile.imported` and `profile.updated`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from contracts.envelope import EnvelopeBase

ImportMode = Literal["manual", "api", "file", "push"]


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


class ProfileUpdatedData(_Data):
    """Fields of an existing profile were set or unset."""

    set: dict[str, JsonValue] = Field(default_factory=dict)
    unset: tuple[str, ...] = ()
    custom_set: dict[str, JsonValue] = Field(default_factory=dict)
    custom_unset: tuple[str, ...] = ()


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
