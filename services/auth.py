"""The HTTP side of API keys (R28): a FastAPI dependency per permission, and the 401/403
problem documents. Keys themselves, their storage and their check are `services.api_keys`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.api import Problem
from services.api_keys import ApiKey, Authenticator, parse_permissions


class AuthError(Exception):
    """A request without a usable key (401) or without the permission it needs (403)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail = status, title, detail

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


# Declares the scheme in the OpenAPI document; the key itself is read from the raw header.
_scheme = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sp_…`")


def require(permission: str) -> Callable[..., Awaitable[ApiKey]]:
    """A FastAPI dependency: the caller's key, if it grants `permission`; else AuthError."""
    parse_permissions([permission])

    async def authorised(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)],
    ) -> ApiKey:
        header = request.headers.get("Authorization")
        if header is None:
            raise AuthError(401, "Unauthorized", "Send an API key: `Authorization: Bearer <key>`.")
        authenticator: Authenticator = request.app.state.auth
        key = await authenticator.verify(header)
        if key is None:
            raise AuthError(401, "Unauthorized", "The API key is malformed, unknown or revoked.")
        if not key.allows(permission):
            raise AuthError(403, "Forbidden", f"The API key lacks the '{permission}' permission.")
        return key

    _PERMISSIONS[authorised] = permission
    return authorised


# each dependency `require` made -> the permission it demands (`permission_of`)
_PERMISSIONS: dict[Callable[..., Awaitable[ApiKey]], str] = {}


def permission_of(dependency: object) -> str | None:
    """The permission a route dependency demands, if `require` made it: lets a test hold every
    route to the permissions API.md gives its section."""
    for made, permission in _PERMISSIONS.items():
        if made is dependency:
            return permission
    return None


async def auth_error_handler(_: Request, exc: Exception) -> Response:
    """Render an AuthError as RFC 9457 problem details."""
    assert isinstance(exc, AuthError)
    body = Problem(title=exc.title, status=exc.status, detail=exc.detail)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=exc.status,
        headers=exc.headers,
        media_type="application/problem+json",
    )


# Route parameters that demand a permission: `_: Reader` in a route's signature.
Reader = Annotated[ApiKey, Depends(require("read"))]
Writer = Annotated[ApiKey, Depends(require("write"))]
Deleter = Annotated[ApiKey, Depends(require("delete"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]
