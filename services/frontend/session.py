"""The shopper's session: tokens in HttpOnly cookies, transparent refresh, identity headers, CSRF.

Cookies (`SameSite=Lax`, `Secure` when COOKIE_SECURE=true; `HttpOnly` except the readable routing hints
`shop_group` and `canary`):
- `shop_access`: the access token; `shop_refresh`: the refresh token;
- `shop_csrf`: a random nonce signed with SESSION_SECRET (double submit: forms echo it back);
- `shop_group`: the user's routing group, so a mesh can also route a browser by cookie;
- `canary`: `true` after "Try the canary build" in the footer (the lesson's cookie-based canary route).
Cookie changes are queued on the request (`queue_cookie`) and written by `CookieMiddleware`, so a
handler that returns any response (page, redirect, JSON, error) still refreshes the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.frontend.clients import SESSION_COOKIES, Neighbours
from services.kit.deps import app_state
from services.kit.errors import ApiError, documents
from services.kit.jwt import JwksVerifier, Principal

ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE = SESSION_COOKIES
GROUP_COOKIE = "shop_group"
CANARY_COOKIE = "canary"  # `canary=true`: the lesson's cookie-based canary route (passed on to services)
READABLE_COOKIES = (GROUP_COOKIE, CANARY_COOKIE)  # not secret: no HttpOnly
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


def user_group(principal: Principal) -> str:
    """The routing group the mesh sees: beta testers first, then admins, everyone else is a customer."""
    if principal.in_group("beta"):
        return "beta"
    if principal.in_group("admin"):
        return "admin"
    return "customer"


@dataclass
class Session:
    """Who is calling, with which token (None for an anonymous visitor)."""

    principal: Principal | None = None
    via_cookie: bool = False
    identity_headers: dict[str, str] = field(default_factory=dict)

    @property
    def logged_in(self) -> bool:
        return self.principal is not None


def _session_for(principal: Principal, via_cookie: bool) -> Session:
    headers = {
        "authorization": f"Bearer {principal.token}",
        "x-user-id": principal.sub,
        "x-user-group": user_group(principal),
    }
    return Session(principal=principal, via_cookie=via_cookie, identity_headers=headers)


# --- cookies -------------------------------------------------------------------------------------


def queue_cookie(request: Request, name: str, value: str | None, max_age: int | None = None) -> None:
    """Set (or with value None, delete) a cookie on whatever response this request ends with."""
    pending: dict[str, tuple[str | None, int | None]] = request.scope.setdefault("frontend.cookies", {})
    pending[name] = (value, max_age)


async def start_session(request: Request, tokens: dict[str, Any]) -> Principal:
    """Keep a fresh token pair (from login or refresh) in the cookies; the verified user."""
    principal: Principal = await app_state(request).verifier.verify(str(tokens["access_token"]))
    keep = app_state(request).settings.refresh_cookie_days * 86400
    queue_cookie(request, ACCESS_COOKIE, str(tokens["access_token"]), int(tokens.get("expires_in") or 900))
    queue_cookie(request, REFRESH_COOKIE, str(tokens["refresh_token"]), keep)
    queue_cookie(request, GROUP_COOKIE, user_group(principal), keep)
    return principal


def clear_session(request: Request) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE, GROUP_COOKIE):
        queue_cookie(request, name, None)


class CookieMiddleware:
    """Writes the cookies queued during the request into the response headers."""

    def __init__(self, app: ASGIApp, *, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, (value, max_age) in scope.get("frontend.cookies", {}).items():
                    headers.append("set-cookie", self._cookie(name, value, max_age))
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    def _cookie(self, name: str, value: str | None, max_age: int | None) -> str:
        parts = [f"{name}={value or ''}", "Path=/", "SameSite=Lax"]
        if name not in READABLE_COOKIES:
            parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        if value is None:
            parts.append("Max-Age=0")
        elif max_age is not None:
            parts.append(f"Max-Age={max_age}")
        return "; ".join(parts)


# --- CSRF (signed double submit) -----------------------------------------------------------------


def _sign(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, nonce.encode(), hashlib.sha256).hexdigest()


def _valid_token(secret: bytes, token: str) -> bool:
    nonce, _, signature = token.partition(".")
    return bool(nonce) and hmac.compare_digest(signature, _sign(secret, nonce))


def csrf_token(request: Request) -> str:
    """The token forms must echo back: the cookie's, or a fresh one (queued as the cookie)."""
    cached: str | None = request.scope.get("frontend.csrf")
    if cached:
        return cached
    secret: bytes = app_state(request).session_secret
    token = request.cookies.get(CSRF_COOKIE, "")
    if not _valid_token(secret, token):
        nonce = secrets.token_urlsafe(24)
        token = f"{nonce}.{_sign(secret, nonce)}"
        queue_cookie(request, CSRF_COOKIE, token)
    request.scope["frontend.csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    """403 unless the submitted token matches the cookie and carries our signature."""
    secret: bytes = app_state(request).session_secret
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not submitted or not _valid_token(secret, cookie) or not hmac.compare_digest(submitted, cookie):
        raise ApiError(
            403, "csrf_failed", "the form expired or did not come from this shop; please try again"
        )


# --- resolving the session -----------------------------------------------------------------------


@documents({401: "unauthorized: a Bearer token that is expired or forged"})
async def resolve_session(request: Request) -> Session:
    """The caller: a Bearer header (API clients) or the session cookies, refreshed when expired.

    A bad Bearer token is a 401. A bad or expired cookie token is refreshed once with the refresh
    token; when that fails too, the cookies are cleared and the visitor is anonymous.
    """
    cached: Session | None = request.scope.get("frontend.session")
    if cached is not None:
        return cached
    verifier: JwksVerifier = app_state(request).verifier
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer.strip():
        session = _session_for(await verifier.verify(bearer.strip()), via_cookie=False)
    else:
        session = await _cookie_session(request, verifier)
    request.scope["frontend.session"] = session
    return session


async def _cookie_session(request: Request, verifier: JwksVerifier) -> Session:
    access = request.cookies.get(ACCESS_COOKIE)
    refresh = request.cookies.get(REFRESH_COOKIE)
    if access:
        try:
            return _session_for(await verifier.verify(access), via_cookie=True)
        except ApiError as exc:
            if exc.status != 401:
                raise  # auth unreachable: a 503, not a silent logout
    if not refresh:
        if access:
            clear_session(request)
        return Session()
    tokens = await Neighbours(request, {}).refresh(refresh)
    if tokens is None:
        clear_session(request)
        return Session()
    return _session_for(await start_session(request, tokens), via_cookie=True)
