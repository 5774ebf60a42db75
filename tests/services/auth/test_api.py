"""auth API: register, login, refresh rotation, JWKS, and every kind of bad input."""

from __future__ import annotations

import hashlib
import re
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from pymongo.errors import OperationFailure

from services.auth import store
from services.auth.app import build_app
from services.kit.errors import ApiError
from services.kit.jwt import JwksVerifier
from services.kit.testing import TokenFactory
from tests.services.auth.helpers import PASSWORD, auth_settings, login, register
from tests.services.helpers import error_code

# --- register ------------------------------------------------------------------------------------------


def test_register_creates_a_customer_with_normalized_email(auth: TestClient) -> None:
    response = auth.post(
        "/auth/register", json={"email": "  Ada@Example.COM ", "password": PASSWORD, "name": " Ada Lovelace "}
    )
    assert response.status_code == 201
    assert response.headers["x-served-by"] == "auth/v1"
    body = response.json()
    assert set(body) == {"id", "email", "name", "groups"}
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"]), body["id"]  # an opaque random id, nothing derived
    assert register(auth, "grace@example.com")["id"] != body["id"]
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada Lovelace"
    assert body["groups"] == ["customer"]


def test_beta_testers_and_admin_emails_get_their_groups(auth: TestClient) -> None:
    assert register(auth, "beta@example.com", beta_tester=True)["groups"] == ["customer", "beta"]
    assert register(auth, "ADMIN@example.com")["groups"] == ["customer", "admin"]
    assert register(auth, "root@example.com", beta_tester=False)["groups"] == ["customer", "admin"]


def test_duplicate_registration_is_409_whatever_the_case(auth: TestClient) -> None:
    register(auth, "dup@example.com")
    again = auth.post("/auth/register", json={"email": "DUP@example.com ", "password": PASSWORD, "name": "B"})
    assert again.status_code == 409
    assert error_code(again) == "email_taken"


def test_password_is_stored_as_an_argon2id_hash(auth: TestClient) -> None:
    register(auth, "hash@example.com")
    db = auth.app.state.db  # type: ignore[attr-defined]
    doc = auth.portal.call(db.users.find_one, {"email": "hash@example.com"})  # type: ignore[union-attr]
    assert doc["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in str(doc)


# --- login and the access token --------------------------------------------------------------------------


def test_login_issues_an_rs256_access_token_with_the_contract_claims(auth: TestClient) -> None:
    user = register(auth, "claims@example.com", beta_tester=True)
    pair = login(auth, "Claims@Example.com")
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    assert pair["refresh_token"] and pair["refresh_token"] != pair["access_token"]

    jwks = auth.get("/.well-known/jwks.json").json()
    header = pyjwt.get_unverified_header(pair["access_token"])
    assert header["alg"] == "RS256"
    assert header["kid"] == jwks["keys"][0]["kid"]
    key = pyjwt.PyJWK(jwks["keys"][0]).key
    claims = pyjwt.decode(
        pair["access_token"], key, algorithms=["RS256"], audience="shop", issuer="shop-auth"
    )
    assert claims["sub"] == user["id"]
    assert claims["email"] == "claims@example.com"
    assert claims["name"] == "Ada"
    assert claims["groups"] == ["customer", "beta"]
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 30


def test_an_outdated_password_hash_is_upgraded_at_login(auth: TestClient) -> None:
    db = auth.app.state.db  # type: ignore[attr-defined]
    # Made with other parameters (e.g. before a change of settings): still valid, but to be upgraded.
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    doc = {
        "_id": "legacy",
        "email": "old@example.com",
        "name": "Old",
        "password_hash": weak,
        "beta_tester": False,
    }
    auth.portal.call(db.users.insert_one, doc)  # type: ignore[union-attr]
    assert login(auth, "old@example.com")["access_token"]
    upgraded = auth.portal.call(db.users.find_one, {"_id": "legacy"})  # type: ignore[union-attr]
    assert upgraded["password_hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert login(auth, "old@example.com")["access_token"]


def test_tokens_verify_with_the_published_jwks_and_with_auths_own_verifier(auth: TestClient) -> None:
    register(auth, "verify@example.com")
    token = login(auth, "verify@example.com")["access_token"]
    other_service = JwksVerifier("http://unused.invalid/jwks", "shop-auth", "shop")
    other_service.trust(auth.get("/.well-known/jwks.json").json())
    principal = auth.portal.call(other_service.verify, token)  # type: ignore[union-attr]
    assert principal.email == "verify@example.com" and principal.groups == ("customer",)
    own = auth.portal.call(auth.app.state.verifier.verify, token)  # type: ignore[attr-defined,union-attr]
    assert own.sub == principal.sub


def test_a_forged_token_with_the_same_kid_is_rejected(auth: TestClient) -> None:
    kid = auth.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    forged = TokenFactory(kid=kid).token(email="mallory@example.com", groups=["admin"])
    with pytest.raises(ApiError) as caught:
        auth.portal.call(auth.app.state.verifier.verify, forged)  # type: ignore[attr-defined,union-attr]
    assert caught.value.status == 401


def test_wrong_password_and_unknown_email_get_the_same_answer(auth: TestClient) -> None:
    register(auth, "known@example.com")
    wrong = auth.post("/auth/login", json={"email": "known@example.com", "password": "not it at all"})
    unknown = auth.post("/auth/login", json={"email": "nobody@example.com", "password": "not it at all"})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"error": {"code": "invalid_credentials", "message": "email or password is incorrect"}}
    )


def test_unknown_email_costs_a_password_hash_like_a_wrong_password(auth: TestClient) -> None:
    register(auth, "timing@example.com")

    def duration(email: str) -> float:
        started = time.perf_counter()
        auth.post("/auth/login", json={"email": email, "password": "wrong password"})
        return time.perf_counter() - started

    # Two attempts each stay below the throttle (5); without the dummy hash, unknown would be ~100x faster.
    known = statistics.median([duration("timing@example.com") for _ in range(2)])
    unknown = statistics.median([duration(f"ghost{i}@example.com") for i in range(3)])
    assert 0.3 < unknown / known < 3.0, (known, unknown)


# --- refresh rotation ------------------------------------------------------------------------------------


def test_refresh_rotates_and_the_old_refresh_token_stops_working(auth: TestClient) -> None:
    register(auth, "rotate@example.com")
    first = login(auth, "rotate@example.com")
    second = auth.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    claims = pyjwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["email"] == "rotate@example.com" and claims["typ"] == "access"

    reused = auth.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert error_code(reused) == "invalid_refresh_token"


def test_reusing_an_old_refresh_token_revokes_the_whole_login(auth: TestClient) -> None:
    register(auth, "stolen@example.com")
    first = login(auth, "stolen@example.com")
    second = auth.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert auth.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401
    # The legitimate holder's newer token is revoked too: a thief cannot keep a session alive.
    assert auth.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    # Another login (another family) is unaffected.
    other = login(auth, "stolen@example.com")
    assert auth.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_a_refresh_gives_each_user_their_own_identity_and_revokes_only_their_login(auth: TestClient) -> None:
    """Two shoppers: bob's refresh token gives bob's access token (never the first account's), and ada's
    stolen-token revocation leaves bob's session alone."""
    ada_id = register(auth, "ada@example.com", name="Ada")["id"]
    bob_id = register(auth, "bob@example.com", name="Bob")["id"]
    ada, bob = login(auth, "ada@example.com"), login(auth, "bob@example.com")

    refreshed = auth.post("/auth/refresh", json={"refresh_token": bob["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    claims = pyjwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["email"], claims["name"]) == (bob_id, "bob@example.com", "Bob")
    again = auth.post("/auth/refresh", json={"refresh_token": ada["refresh_token"]}).json()
    assert pyjwt.decode(again["access_token"], options={"verify_signature": False})["sub"] == ada_id

    assert (
        auth.post("/auth/refresh", json={"refresh_token": ada["refresh_token"]}).status_code == 401
    )  # reuse
    assert auth.post("/auth/refresh", json={"refresh_token": again["refresh_token"]}).status_code == 401
    bob_next = auth.post("/auth/refresh", json={"refresh_token": refreshed.json()["refresh_token"]})
    assert bob_next.status_code == 200  # bob's login is not ada's family


def test_refresh_tokens_are_stored_hashed_and_expire(auth: TestClient) -> None:
    register(auth, "expire@example.com")
    pair = login(auth, "expire@example.com")
    db = auth.app.state.db  # type: ignore[attr-defined]
    docs = auth.portal.call(lambda: db.refresh_tokens.find({}).to_list(length=None))  # type: ignore[union-attr]
    assert len(docs) == 1 and pair["refresh_token"] not in str(docs)
    lifetime = docs[0]["expires_at"] - docs[0]["created_at"]
    assert lifetime == timedelta(days=7)
    auth.portal.call(  # type: ignore[union-attr]
        db.refresh_tokens.update_one, {}, {"$set": {"expires_at": datetime(2000, 1, 1)}}
    )
    expired = auth.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert expired.status_code == 401


def test_a_refresh_token_is_honoured_once_even_in_parallel(auth: TestClient) -> None:
    register(auth, "race@example.com")
    token = login(auth, "race@example.com")["refresh_token"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = Counter(
            pool.map(
                lambda _: auth.post("/auth/refresh", json={"refresh_token": token}).status_code, range(8)
            )
        )
    assert statuses == Counter({200: 1, 401: 7})


@pytest.mark.parametrize("token", ["made-up", "x" * 200, "a.b.c"])
def test_unknown_refresh_tokens_are_401(auth: TestClient, token: str) -> None:
    response = auth.post("/auth/refresh", json={"refresh_token": token})
    assert response.status_code == 401
    assert error_code(response) == "invalid_refresh_token"


# --- JWKS ------------------------------------------------------------------------------------------------


def test_jwks_publishes_only_the_public_key(auth: TestClient) -> None:
    response = auth.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    (key,) = response.json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert {"n", "e", "kid"} <= set(key)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_operational_endpoints_answer(auth: TestClient) -> None:
    assert auth.get("/healthz").json() == {"status": "ok"}
    assert auth.get("/readyz").status_code == 200
    auth.post("/auth/login", json={"email": "m@example.com", "password": "x"})
    assert 'route="/auth/login"' in auth.get("/metrics").text


# --- bad input: 4xx JSON, never 500 ----------------------------------------------------------------------

GOOD = {
    "/auth/register": {"email": "ok@example.com", "password": PASSWORD, "name": "Ok"},
    "/auth/login": {"email": "ok@example.com", "password": PASSWORD},
    "/auth/refresh": {"refresh_token": "abc"},
}
BAD_BODIES = [
    ("/auth/register", {"password": PASSWORD, "name": "No email"}, 422),
    ("/auth/register", {"email": "a@example.com", "name": "No password"}, 422),
    ("/auth/register", {"email": "a@example.com", "password": PASSWORD}, 422),
    ("/auth/register", {"email": "not-an-email", "password": PASSWORD, "name": "A"}, 422),
    ("/auth/register", {"email": "a@example.com", "password": "short", "name": "A"}, 422),
    ("/auth/register", {"email": "a@example.com", "password": "p" * 129, "name": "A"}, 422),
    ("/auth/register", {"email": "a@example.com", "password": PASSWORD, "name": "   "}, 422),
    (
        "/auth/register",
        {"email": "a@example.com", "password": PASSWORD, "name": "A", "beta_tester": "yes"},
        422,
    ),
    ("/auth/register", {"email": "a@example.com", "password": 12345678, "name": "A"}, 422),
    ("/auth/register", {"email": ["a@example.com"], "password": PASSWORD, "name": "A"}, 422),
    ("/auth/register", {**GOOD["/auth/register"], "groups": ["admin"]}, 422),
    ("/auth/register", [GOOD["/auth/register"]], 422),
    ("/auth/login", {"email": "a@example.com"}, 422),
    ("/auth/login", {"email": "a@example.com", "password": None}, 422),
    ("/auth/login", {"email": 42, "password": PASSWORD}, 422),
    ("/auth/login", {"email": "a@example.com", "password": ""}, 422),
    ("/auth/refresh", {}, 422),
    ("/auth/refresh", {"refresh_token": 1}, 422),
    ("/auth/refresh", {"refresh_token": ""}, 422),
    ("/auth/refresh", {"refresh_token": "abc", "user_id": "x"}, 422),
]


@pytest.mark.parametrize(("path", "body", "status"), BAD_BODIES)
def test_invalid_bodies_get_a_json_4xx(auth: TestClient, path: str, body: Any, status: int) -> None:
    response = auth.post(path, json=body)
    assert response.status_code == status, response.text
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"]


@pytest.mark.parametrize("path", list(GOOD))
def test_malformed_json_is_400(auth: TestClient, path: str) -> None:
    response = auth.post(path, content=b'{"email": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == "malformed_json"


@pytest.mark.parametrize("path", list(GOOD))
def test_oversized_body_is_413(auth: TestClient, path: str) -> None:
    body = {**GOOD[path], "padding": "x" * 70_000}
    response = auth.post(path, json=body)
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


def test_wrong_method_is_a_json_405(auth: TestClient) -> None:
    response = auth.get("/auth/login")
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


def test_a_token_nobody_issued_revokes_nobodys_login(auth: TestClient) -> None:
    """Bob has rotated his refresh token once (his first one is used). A made-up or expired refresh token
    from anyone else is 401 and nothing more: reuse detection looks up exactly the token presented, so
    bob's session survives it."""
    register(auth, "bob@example.com")
    bob_first = login(auth, "bob@example.com")  # the first token stored
    bob_now = auth.post("/auth/refresh", json={"refresh_token": bob_first["refresh_token"]}).json()

    made_up = auth.post("/auth/refresh", json={"refresh_token": "x" * 43})
    assert made_up.status_code == 401 and error_code(made_up) == "invalid_refresh_token"

    assert auth.post("/auth/refresh", json={"refresh_token": bob_now["refresh_token"]}).status_code == 200


def test_the_token_store_records_which_tokens_a_reuse_revoked(auth: TestClient) -> None:
    """The audit trail of a stolen-token reuse: the live tokens of the login are marked revoked for reuse;
    tokens used normally keep the time they were used, unmarked. Refresh tokens are 256 random bits."""
    register(auth, "audit@example.com")
    first = login(auth, "audit@example.com")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first["refresh_token"])  # base64url of 32 random bytes
    second = auth.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    db = auth.app.state.db  # type: ignore[attr-defined]

    def stored(token: str) -> dict[str, Any]:
        digest = hashlib.sha256(token.encode()).hexdigest()
        doc: dict[str, Any] = auth.portal.call(db.refresh_tokens.find_one, {"_id": digest})  # type: ignore[union-attr]
        return doc

    used_at = stored(first["refresh_token"])["used_at"]
    assert auth.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401
    reused, revoked = stored(first["refresh_token"]), stored(second["refresh_token"])
    assert (reused["used_at"], "revoked" in reused) == (used_at, False)
    assert revoked["revoked"] == "reuse" and revoked["used_at"] is not None


def test_expired_tokens_and_login_records_are_deleted_by_mongodb_and_families_are_indexed() -> None:
    """At start-up auth creates a TTL index on `expires_at` (MongoDB deletes a document once that moment
    passes: expireAfterSeconds 0) for refresh tokens and failed-login records, an index on a token's
    family (revoking a login finds its tokens without a collection scan) and the unique e-mail index."""
    app = build_app(auth_settings())
    with TestClient(app) as client:
        db = app.state.db

        def indexes(collection: Any) -> dict[tuple[tuple[str, int], ...], dict[str, Any]]:
            info = client.portal.call(collection.index_information)
            return {tuple(index["key"]): index for index in info.values()}

        tokens, attempts, users = (indexes(c) for c in (db.refresh_tokens, db.login_attempts, db.users))
    for collection in (tokens, attempts):
        assert collection[(("expires_at", 1),)].get("expireAfterSeconds") == 0
    assert (("family", 1),) in tokens
    assert users[(("email", 1),)].get("unique") is True


@pytest.mark.parametrize(("code", "starts"), [(238, True), (13, False)])
async def test_a_server_without_ttl_indexes_starts_and_other_index_errors_stop_it(
    code: int, starts: bool
) -> None:
    """FerretDB 1.x answers NotImplemented (238) to a TTL index: auth starts all the same (expired documents
    stay; every query ignores them). Any other refusal (13 Unauthorized, ...) is a real problem: raised."""

    class Collection:
        name = "refresh_tokens"

        async def create_index(self, *args: Any, **kwargs: Any) -> None:
            raise OperationFailure("no", code=code)

    if starts:
        await store._expire_index(Collection())
    else:
        with pytest.raises(OperationFailure):
            await store._expire_index(Collection())
