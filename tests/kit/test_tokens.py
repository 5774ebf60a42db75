"""The kit's token check (services/kit/jwt.py), as a caller presenting a token sees it: which tokens are
accepted, what the 401 says for each one refused, who the accepted token says the caller is."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from fastapi.testclient import TestClient

from services.kit import ApiError
from services.kit.jwt import JwksVerifier, Principal, sign
from services.kit.testing import TokenFactory

REQUIRED = ("exp", "iat", "sub", "iss", "aud")


def claims(**changes: Any) -> dict[str, Any]:
    """An access token's claims as auth issues them; a change of None drops the claim."""
    now = int(time.time())
    base = {
        "iss": "shop-auth",
        "aud": "shop",
        "sub": "u-1",
        "email": "ada@example.com",
        "name": "Ada",
        "groups": ["customer", "beta"],
        "typ": "access",
        "iat": now,
        "exp": now + 300,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def verifier_for(tokens: TokenFactory, **options: Any) -> JwksVerifier:
    def nothing_published(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": []})

    verifier = JwksVerifier(
        "http://auth/.well-known/jwks.json",
        "shop-auth",
        "shop",
        transport=httpx.MockTransport(nothing_published),
        **options,
    )
    verifier.trust(tokens.jwks())
    return verifier


async def refusal(verifier: JwksVerifier, token: str) -> ApiError:
    with pytest.raises(ApiError) as refused:
        await verifier.verify(token)
    error = refused.value
    assert (error.status, error.code) == (401, "unauthorized")
    assert error.headers == {"WWW-Authenticate": "Bearer"}
    return error


async def test_a_user_token_says_who_the_user_is(tokens: TokenFactory) -> None:
    verifier = verifier_for(tokens)
    token = sign(tokens.private_key, tokens.kid, claims())
    user = await verifier.verify(token)
    assert user == Principal(
        sub="u-1", email="ada@example.com", groups=("customer", "beta"), token=token, name="Ada"
    )
    assert user.is_user and not user.is_service("u-1")
    bare = await verifier.verify(
        sign(tokens.private_key, tokens.kid, claims(email=None, name=None, groups=None))
    )
    assert (bare.email, bare.name, bare.groups) == ("", "", ())


@pytest.mark.parametrize("claim", REQUIRED)
async def test_a_token_without_a_required_claim_is_refused(tokens: TokenFactory, claim: str) -> None:
    """No `exp` would be a token valid forever; no `sub`, nobody's; no `iss`/`aud`, anyone's."""
    error = await refusal(verifier_for(tokens), sign(tokens.private_key, tokens.kid, claims(**{claim: None})))
    assert error.message == "invalid token"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iss": "someone-else"}, "invalid token"),
        ({"aud": "another-shop"}, "invalid token"),
        ({"exp": int(time.time()) - 60}, "token expired"),
        ({"iat": int(time.time()) + 3600}, "invalid token"),  # issued in the future
        ({"typ": "refresh"}, "not an access token"),
        ({"typ": None}, "not an access token"),
        ({"client_id": "order"}, "invalid service token"),  # a user's sub with a client's id
        ({"client_id": 7, "sub": "7"}, "invalid service token"),
    ],
    ids=[
        "issuer",
        "audience",
        "expired",
        "future-iat",
        "refresh-typ",
        "no-typ",
        "client-id-not-sub",
        "client-id-int",
    ],
)
async def test_a_token_with_a_wrong_claim_is_refused(
    tokens: TokenFactory, change: dict[str, Any], message: str
) -> None:
    error = await refusal(verifier_for(tokens), sign(tokens.private_key, tokens.kid, claims(**change)))
    assert error.message == message


def unsigned(header: dict[str, Any], body: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(body)}."


async def test_forged_and_malformed_tokens_are_refused(tokens: TokenFactory) -> None:
    verifier = verifier_for(tokens, min_refresh=0)
    assert (await refusal(verifier, "not-a-jwt")).message == "malformed token"
    no_kid = pyjwt.encode(claims(), tokens.private_key, algorithm="RS256")
    assert (await refusal(verifier, no_kid)).message == "token has no key id"
    empty_kid = pyjwt.encode(claims(), tokens.private_key, algorithm="RS256", headers={"kid": ""})
    assert (await refusal(verifier, empty_kid)).message == "token has no key id"
    unknown = TokenFactory(kid="unknown-key").token()
    assert (await refusal(verifier, unknown)).message == "token signed by an unknown key"
    alg_none = unsigned({"alg": "none", "kid": tokens.kid}, claims())
    assert (await refusal(verifier, alg_none)).message == "invalid token"
    forger = TokenFactory(kid=tokens.kid)  # the right key id, another key
    assert (await refusal(verifier, forger.token())).message == "invalid token"


async def test_a_service_token_names_the_service_and_nobody_else(tokens: TokenFactory) -> None:
    verifier = verifier_for(tokens)
    token = tokens.service_headers("order")["Authorization"].removeprefix("Bearer ")
    order = await verifier.verify(token)
    assert order == Principal(sub="order", email="", groups=(), token=token, client_id="order")
    assert order.is_service("order") and not order.is_service("payment") and not order.is_user
    assert not order.in_group("admin") and not order.may_see("ada")


async def test_an_unreachable_jwks_is_503_and_not_asked_again_at_once() -> None:
    asked = []

    def down(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(503, text="down")

    verifier = JwksVerifier(
        "http://auth/jwks", "shop-auth", "shop", min_refresh=60, transport=httpx.MockTransport(down)
    )
    token = TokenFactory(kid="k1").token()
    with pytest.raises(ApiError) as unavailable:
        await verifier.verify(token)
    assert (unavailable.value.status, unavailable.value.code) == (503, "auth_unavailable")
    assert unavailable.value.message == "cannot verify tokens right now"
    # Within min_refresh the verifier does not hammer auth: the unknown key is simply unknown.
    assert (await refusal(verifier, token)).message == "token signed by an unknown key"
    assert asked == ["/jwks"]


def test_the_401_reaches_the_caller_with_the_reason(client: TestClient, tokens: TokenFactory) -> None:
    no_exp = sign(tokens.private_key, tokens.kid, claims(exp=None))
    refused = client.post(
        "/items/1", json={"name": "x", "quantity": 1}, headers={"Authorization": f"Bearer {no_exp}"}
    )
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["error"] == {"code": "unauthorized", "message": "invalid token"}


async def test_the_jwks_fetch_gives_up_after_its_timeout() -> None:
    """Every outgoing call has a timeout: a hanging auth must not hang every request that carries a token."""
    timeouts = []

    def keys(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(200, json={"keys": []})

    verifier = JwksVerifier(
        "http://auth/jwks", "shop-auth", "shop", timeout=1.5, transport=httpx.MockTransport(keys)
    )
    await refusal(verifier, TokenFactory(kid="k1").token())
    assert timeouts == [{"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={}),
        httpx.Response(200, json={"keys": None}),
        httpx.Response(200, json={"keys": {"kid": "k1"}}),
        httpx.Response(200, json=[]),
        httpx.Response(200, text="<html>a proxy's error page</html>"),
    ],
    ids=["no-keys", "keys-null", "keys-not-a-list", "not-an-object", "not-json"],
)
async def test_an_answer_that_is_not_a_jwk_set_is_a_clear_503(
    answer: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 7517 section 5: a JWK Set is an object with a `keys` list; anything else is auth misbehaving,
    so the caller gets auth_unavailable (503, retry later), never a 500 from a TypeError; the log says why."""
    verifier = JwksVerifier(
        "http://auth/jwks", "shop-auth", "shop", transport=httpx.MockTransport(lambda request: answer)
    )
    with pytest.raises(ApiError) as unavailable:
        await verifier.verify(TokenFactory(kid="k1").token())
    error = unavailable.value
    assert (error.status, error.code, error.message) == (
        503,
        "auth_unavailable",
        "cannot verify tokens right now",
    )
    [warning] = [r.getMessage() for r in caplog.records if r.name == "kit.jwt"]
    if answer.headers["content-type"] == "application/json":
        assert warning == "cannot fetch JWKS from http://auth/jwks: not a JWK Set: no list of keys"
    else:
        assert warning.startswith("cannot fetch JWKS from http://auth/jwks: Expecting value")


async def test_keys_the_verifier_cannot_use_are_skipped_and_the_good_one_still_verifies() -> None:
    """RFC 7517 section 5: keys of an unknown type or missing members are ignored, not fatal."""
    tokens = TokenFactory(kid="good")
    good = tokens.jwks()["keys"][0]
    no_kid = {k: v for k, v in good.items() if k != "kid"}
    odd_keys = [
        "not-an-object",
        no_kid,
        {**good, "kid": 7},
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {**good, "kid": "broken", "n": "AA"},
    ]
    verifier = JwksVerifier(
        "http://auth/jwks",
        "shop-auth",
        "shop",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"keys": [*odd_keys, good]})),
    )
    user = await verifier.verify(tokens.token(sub="ada"))
    assert user.sub == "ada"
    for kid in ("ec", "broken"):
        signed_with_a_skipped_kid = sign(tokens.private_key, kid, claims())
        assert (
            await refusal(verifier, signed_with_a_skipped_kid)
        ).message == "token signed by an unknown key"


async def test_a_services_verifier_waits_3_s_for_auth_and_asks_again_after_10_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The defaults every service runs with (services/kit/app.py builds the verifier without options): a
    hanging auth holds a request carrying a token at most 3 s, and an unknown key makes the service ask auth
    at most once per 10 s (a flood of forged key ids must not become a flood of JWKS requests)."""
    asked: list[dict[str, float]] = []

    def keys(request: httpx.Request) -> httpx.Response:
        asked.append(request.extensions["timeout"])
        return httpx.Response(200, json={"keys": []})

    clock = [1000.0]
    monkeypatch.setattr("services.kit.jwt.time.monotonic", lambda: clock[0])
    verifier = JwksVerifier("http://auth/jwks", "shop-auth", "shop", transport=httpx.MockTransport(keys))
    token = TokenFactory(kid="k1").token()
    await refusal(verifier, token)
    assert asked == [{"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}]
    clock[0] += 9.9
    await refusal(verifier, token)
    assert len(asked) == 1
    clock[0] += 0.2  # 10.1 s after the fetch
    await refusal(verifier, token)
    assert len(asked) == 2


def test_the_published_key_says_it_signs_with_rs256() -> None:
    """What a mesh reads from auth's JWKS (Istio's RequestAuthentication, Envoy's jwt_authn): an RSA
    signing key for RS256 with its key id."""
    tokens = TokenFactory(kid="k9")  # its key comes from generate_private_key, as auth's generated one does
    assert (tokens.private_key.key_size, tokens.private_key.public_key().public_numbers().e) == (2048, 65537)
    [jwk] = tokens.jwks()["keys"]
    assert {k: v for k, v in jwk.items() if k not in ("n", "e")} == {
        "kty": "RSA",
        "kid": "k9",
        "use": "sig",
        "alg": "RS256",
        "key_ops": ["verify"],
    }
