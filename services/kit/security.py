"""FastAPI dependencies for the authenticated caller: a user (shopper, admin) or one of the services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from services.kit.errors import ApiError, documents
from services.kit.jwt import JwksVerifier, Principal


@documents(
    {
        401: "unauthorized: missing, malformed, expired or forged token",
        503: "auth_unavailable: the token's key could not be fetched",
    }
)
async def current_caller(request: Request) -> Principal:
    """The caller of `Authorization: Bearer <token>`, user or service; 401 when missing, expired or forged."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    verifier: JwksVerifier = request.app.state.verifier
    principal = await verifier.verify(token.strip())
    request.state.principal = principal
    return principal


@documents(
    {
        401: "unauthorized: missing, malformed, expired or forged token",
        403: "user_token_required: a service's own token (this acts for a signed-in user)",
        503: "auth_unavailable: the token's key could not be fetched",
    }
)
async def current_user(request: Request) -> Principal:
    """A signed-in user (401 as `current_caller`); a service's own token gets 403: it is nobody's account."""
    principal = await current_caller(request)
    if not principal.is_user:
        raise ApiError(403, "user_token_required", "this endpoint acts for a signed-in user, not a service")
    return principal


def require_service(*names: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets only the named services through with their own token (403 for anyone else,
    admins included: an admin acts through the service's API, so that service learns of every action)."""
    allowed = " or ".join(names)

    @documents({401: "unauthorized", 403: f"forbidden: only the {allowed} service's own token"})
    async def dependency(request: Request) -> Principal:
        principal = await current_caller(request)
        if not any(principal.is_service(name) for name in names):
            raise ApiError(403, "forbidden", f"only the {allowed} service may call this")
        return principal

    return dependency


def require_group(group: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets only members of `group` through (403 otherwise)."""

    @documents({401: "unauthorized", 403: f"forbidden: requires group '{group}'"})
    async def dependency(request: Request) -> Principal:
        principal = await current_user(request)
        if not principal.in_group(group):
            raise ApiError(403, "forbidden", f"requires group '{group}'")
        return principal

    return dependency
