"""HTTP bodies of the v1 API (API.md); the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImportProfileRequest(_Body):
    """One profile to create, or to update when its email already belongs to a profile."""

    email: str | None = Field(default=None, max_length=254)
    phones: tuple[str, ...] = ()
    fields: dict[str, JsonValue] = Field(default_factory=dict)
    custom: dict[str, JsonValue] = Field(default_factory=dict)


class ImportProfileResponse(_Body):
    """Where the import went; pass `consistency_token` as `Consistency-Token` to read it back."""

    profile_id: UUID
    created: bool
    consistency_token: str


class ProfileView(_Body):
    """A profile as the read model holds it."""

    profile_id: UUID
    database_id: str
    md5_id: str
    xxh_id: str
    email: str = Field(description="The email, or `<profile_id>@localhost` when there is none.")
    phones: tuple[str, ...]
    fields: dict[str, JsonValue]
    custom: dict[str, JsonValue]
    status: str
    import_mode: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class FieldError(_Body):
    """One broken rule in a request."""

    field: str
    rule: str
    value: JsonValue = None


class Problem(_Body):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: tuple[FieldError, ...] = ()
