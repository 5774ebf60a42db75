"""auth HTTP API: register, login, refresh, JWKS."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.auth import passwords, store
from services.auth.keys import CurrentSigningKey, SigningKey
from services.auth.settings import Settings
from services.kit import ApiError
from services.kit.db import Database
from services.kit.deps import AppSettings, Db

router = APIRouter(tags=["auth"])

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: Email = Field(examples=["ada@example.com"])
    password: str = Field(min_length=8, max_length=128, examples=["correct horse battery"])
    name: Name = Field(examples=["Ada Lovelace"])
    beta_tester: bool = Field(False, description="adds group `beta` (A/B routing to beta features)")


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: Email = Field(examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=128, examples=["correct horse battery"])


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    refresh_token: str = Field(min_length=1, max_length=200)


class UserOut(BaseModel):
    id: str = Field(examples=["6f1c0c1e4b7a4d3e9a0f2b8c7d6e5f40"])
    email: str = Field(examples=["ada@example.com"])
    name: str = Field(examples=["Ada Lovelace"])
    groups: list[str] = Field(examples=[["customer", "beta"]])


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(examples=[900], description="access token lifetime in seconds")


def groups_for(user: dict[str, Any], settings: Settings) -> list[str]:
    """Groups are derived at every token issue, so an ADMIN_EMAILS change applies at the next refresh."""
    groups = ["customer"]
    if user.get("beta_tester"):
        groups.append("beta")
    if user["email"] in settings.admin_email_set:
        groups.append("admin")
    return groups


async def _token_pair(
    db: Database, settings: Settings, key: SigningKey, user: dict[str, Any], family: str
) -> TokenPair:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user["_id"],
        "email": user["email"],
        "name": user["name"],
        "groups": groups_for(user, settings),
        "typ": "access",
        "iat": now,
        "exp": now + settings.access_token_ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    refresh = await store.issue_refresh_token(db, user["_id"], family, settings.refresh_token_ttl_seconds)
    return TokenPair(
        access_token=key.sign(claims), refresh_token=refresh, expires_in=settings.access_token_ttl_seconds
    )


def _bad_credentials() -> ApiError:
    # One answer for unknown email and wrong password, so the API does not reveal who has an account.
    return ApiError(401, "invalid_credentials", "email or password is incorrect")


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserOut,
    summary="Create an account",
    responses={409: {"description": "email already registered"}},
)
async def register(body: RegisterRequest, db: Db, settings: AppSettings[Settings]) -> UserOut:
    password_hash = await passwords.hash_password(body.password)
    try:
        user = await store.create_user(db, body.email, body.name, password_hash, body.beta_tester)
    except store.EmailTaken:
        raise ApiError(409, "email_taken", "an account with this email already exists") from None
    groups = groups_for(user, settings)
    return UserOut(id=user["_id"], email=user["email"], name=user["name"], groups=groups)


@router.post(
    "/auth/login",
    response_model=TokenPair,
    summary="Log in: an access token and a refresh token",
    responses={401: {"description": "bad credentials"}, 429: {"description": "too many failed attempts"}},
)
async def login(
    body: LoginRequest, db: Db, settings: AppSettings[Settings], key: CurrentSigningKey
) -> TokenPair:
    throttle = store.Throttle(
        settings.login_max_failures,
        timedelta(seconds=settings.login_failure_window_seconds),
        timedelta(seconds=settings.login_lockout_seconds),
    )
    wait = await store.begin_login_attempt(db, body.email, throttle)
    if wait:
        raise ApiError(
            429,
            "too_many_attempts",
            "too many failed logins for this account; try again later",
            details={"retry_after_seconds": wait},
            headers={"Retry-After": str(wait)},
        )
    user = await store.find_user_by_email(db, body.email)
    matches = await passwords.verify_password(user["password_hash"] if user else None, body.password)
    if user is None or not matches:
        raise _bad_credentials()
    await store.clear_login_attempts(db, body.email)
    if passwords.needs_rehash(user["password_hash"]):
        await store.replace_password_hash(db, user["_id"], await passwords.hash_password(body.password))
    return await _token_pair(db, settings, key, user, store.new_family())


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    summary="Trade a refresh token for a new pair (the old refresh token stops working)",
    responses={401: {"description": "unknown, expired or already used refresh token"}},
)
async def refresh(
    body: RefreshRequest, db: Db, settings: AppSettings[Settings], key: CurrentSigningKey
) -> TokenPair:
    used = await store.consume_refresh_token(db, body.refresh_token)
    user = await store.find_user(db, used["user_id"]) if used else None
    if used is None or user is None:
        raise ApiError(401, "invalid_refresh_token", "refresh token is invalid, expired or already used")
    return await _token_pair(db, settings, key, user, used["family"])


@router.get("/.well-known/jwks.json", tags=["keys"], summary="Public keys that verify access tokens")
async def jwks(response: Response, key: CurrentSigningKey) -> dict[str, Any]:
    # Verifiers cache keys and refetch on an unknown kid, so a short max-age is plenty.
    response.headers["Cache-Control"] = "public, max-age=300"
    return key.jwks()
