"""FastAPI dependencies for the authenticated caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from services.kit.errors import ApiError
from services.kit.jwt import JwksVerifier, Principal


async def current_user(request: Request) -> Principal:
    """The caller from `Authorization: Bearer <token>`; 401 when missing, expired or forged."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    verifier: JwksVerifier = request.app.state.verifier
    principal = await verifier.verify(token.strip())
    request.state.principal = principal
    return principal


def require_group(group: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets only members of `group` through (403 otherwise)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_user(request)
        if not principal.in_group(group):
            raise ApiError(403, "forbidden", f"requires group '{group}'")
        return principal

    return dependency
