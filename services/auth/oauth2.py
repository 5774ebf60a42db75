"""`POST /oauth2/token`: the OAuth 2.0 client credentials grant (RFC 6749 section 4.4) for the services.

A service authenticates with its client id and secret (HTTP Basic, or `client_id`/`client_secret` in the
form: RFC 6749 section 2.3.1) and gets a short-lived RS256 access token shaped like RFC 9068's JWT access
tokens: `sub` = `client_id` = the service's name, `aud` = `shop`, `typ` = `access`, no email, no groups.
Every service verifies it with the same JWKS as user tokens (`services.kit.jwt`).

This endpoint speaks the standard's wire format so that any OAuth 2.0 client works with it: a form body
in, and errors as RFC 6749 section 5.2 has them (`{"error": "invalid_client", "error_description": ...}`),
not the shop's `{"error": {"code", ...}}` body.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from typing import Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.auth.clients import KnownServiceClients
from services.auth.keys import CurrentSigningKey
from services.auth.settings import Settings
from services.kit.deps import AppSettings

log = logging.getLogger("auth.oauth2")
router = APIRouter(tags=["oauth2"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 section 5.1


class ServiceToken(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(examples=[300], description="seconds")


class OAuthError(BaseModel):
    error: Literal["invalid_request", "invalid_client", "unsupported_grant_type", "invalid_scope"]
    error_description: str


def _error(status: int, error: str, description: str, basic: bool = False) -> JSONResponse:
    headers = dict(NO_STORE)
    if status == 401 and basic:
        headers["WWW-Authenticate"] = 'Basic realm="shop-auth"'
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers=headers)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)  # each is form-urlencoded first (section 2.3.1)


@router.post(
    "/oauth2/token",
    response_model=ServiceToken,
    summary="A service's own access token (OAuth 2.0 client credentials grant)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string", "description": "if not sent with HTTP Basic"},
                            "client_secret": {"type": "string", "description": "if not sent with HTTP Basic"},
                        },
                    }
                }
            },
        }
    },
    responses={
        400: {"model": OAuthError, "description": "invalid_request, unsupported_grant_type, invalid_scope"},
        401: {"model": OAuthError, "description": "invalid_client: unknown client or wrong secret"},
    },
)
async def token(
    request: Request, clients: KnownServiceClients, settings: AppSettings[Settings], key: CurrentSigningKey
) -> JSONResponse:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _error(400, "invalid_request", "send an application/x-www-form-urlencoded body")
    form = await request.form()
    fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    basic = _basic_credentials(request.headers.get("authorization", ""))
    in_form = "client_id" in fields or "client_secret" in fields
    if basic is not None and in_form:
        return _error(400, "invalid_request", "authenticate with HTTP Basic or the form, not both")
    client_id, secret = basic or (fields.get("client_id", ""), fields.get("client_secret", ""))
    if not client_id or not clients.authenticate(client_id, secret):
        log.warning("client credentials refused for %r", client_id[:64])
        return _error(401, "invalid_client", "unknown client or wrong secret", basic=basic is not None)
    grant = fields.get("grant_type")
    if not grant:
        return _error(400, "invalid_request", "grant_type is required")
    if grant != "client_credentials":
        return _error(400, "unsupported_grant_type", "this endpoint issues client_credentials tokens only")
    if fields.get("scope", "").strip():
        return _error(400, "invalid_scope", "no scopes are defined: leave scope out")
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": client_id,
        "client_id": client_id,
        "typ": "access",
        "iat": now,
        "exp": now + settings.service_token_ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    log.info("service token issued to %s", client_id)
    body = ServiceToken(access_token=key.sign(claims), expires_in=settings.service_token_ttl_seconds)
    return JSONResponse(body.model_dump(), headers=NO_STORE)
