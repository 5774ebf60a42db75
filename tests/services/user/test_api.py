"""user API: profile from the token, addresses (own only, limited), admin listing, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.kit.testing import TokenFactory
from tests.services.helpers import (
    PLANTED_ADDRESS_VALUES,
    PLANTED_IDS,
    assert_refused_field,
    error_code,
    planted_address,
)

ADDRESS = {
    "label": "home",
    "name": "Ada Lovelace",
    "street": "Damrak 1",
    "city": "Amsterdam",
    "postal_code": "1012 LG",
    "country": "NL",
}


def as_user(tokens: TokenFactory, sub: str = "ada", **claims: Any) -> dict[str, str]:
    claims.setdefault("email", f"{sub}@example.com")
    claims.setdefault("name", sub.title())
    return tokens.headers(sub=sub, **claims)


# --- profile -------------------------------------------------------------------------------------------


def test_first_get_creates_the_profile_from_the_token(user: TestClient, tokens: TokenFactory) -> None:
    headers = as_user(tokens, "ada", name="Ada Lovelace", groups=["customer", "beta"])
    first = user.get("/users/me", headers=headers)
    assert first.status_code == 200
    assert first.headers["x-served-by"] == "user/v1"
    body = first.json()
    assert body["id"] == "ada"
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada Lovelace"
    assert body["phone"] is None
    assert body["groups"] == ["customer", "beta"]
    assert body["created_at"].endswith("Z") and body["created_at"] == body["updated_at"]
    assert user.get("/users/me", headers=headers).json() == body


def test_a_token_without_name_falls_back_to_the_email_name(user: TestClient, tokens: TokenFactory) -> None:
    headers = tokens.headers(sub="nameless", email="grace.hopper@example.com")
    assert user.get("/users/me", headers=headers).json()["name"] == "grace.hopper"


def test_put_me_updates_name_and_phone(user: TestClient, tokens: TokenFactory) -> None:
    headers = as_user(tokens, "ada")
    created = user.get("/users/me", headers=headers).json()
    updated = user.put("/users/me", headers=headers, json={"name": " Countess ", "phone": "+31 20 123 4567"})
    assert updated.status_code == 200
    body = updated.json()
    assert body["name"] == "Countess" and body["phone"] == "+31 20 123 4567"
    assert body["created_at"] == created["created_at"] and body["updated_at"] >= created["updated_at"]
    assert user.get("/users/me", headers=headers).json() == body
    cleared = user.put("/users/me", headers=headers, json={"name": "Countess"}).json()
    assert cleared["phone"] is None


def test_put_me_before_any_get_creates_the_profile(user: TestClient, tokens: TokenFactory) -> None:
    response = user.put("/users/me", headers=as_user(tokens, "new"), json={"name": "Newcomer", "phone": None})
    assert response.status_code == 200
    assert response.json()["email"] == "new@example.com" and response.json()["name"] == "Newcomer"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"phone": "+31 20 123 4567"},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 42},
        {"name": "Ada", "phone": "call me"},
        {"name": "Ada", "phone": 3120123},
        {"name": "Ada", "email": "other@example.com"},
        ["Ada"],
    ],
)
def test_put_me_rejects_invalid_bodies(user: TestClient, tokens: TokenFactory, body: Any) -> None:
    response = user.put("/users/me", headers=as_user(tokens), json=body)
    assert response.status_code == 422, response.text
    assert error_code(response) == "validation_error"


# --- addresses -----------------------------------------------------------------------------------------


def test_address_crud(user: TestClient, tokens: TokenFactory) -> None:
    headers = as_user(tokens)
    assert user.get("/users/me/addresses", headers=headers).json() == []

    created = user.post("/users/me/addresses", headers=headers, json=ADDRESS)
    assert created.status_code == 201
    address = created.json()
    assert {k: address[k] for k in ADDRESS} == ADDRESS
    assert len(address["id"]) == 32
    work = user.post("/users/me/addresses", headers=headers, json={**ADDRESS, "label": "work"}).json()
    assert [a["label"] for a in user.get("/users/me/addresses", headers=headers).json()] == ["home", "work"]

    moved = {**ADDRESS, "street": "Dam 2", "postal_code": "1012 JS"}
    replaced = user.put(f"/users/me/addresses/{address['id']}", headers=headers, json=moved)
    assert replaced.status_code == 200
    assert replaced.json()["street"] == "Dam 2" and replaced.json()["id"] == address["id"]
    assert replaced.json()["created_at"] == address["created_at"]

    deleted = user.delete(f"/users/me/addresses/{address['id']}", headers=headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert user.get("/users/me/addresses", headers=headers).json() == [work]
    again = user.delete(f"/users/me/addresses/{address['id']}", headers=headers)
    assert again.status_code == 404 and error_code(again) == "address_not_found"


def test_other_users_addresses_are_invisible(user: TestClient, tokens: TokenFactory) -> None:
    ada, bob = as_user(tokens, "ada"), as_user(tokens, "bob")
    secret = user.post("/users/me/addresses", headers=ada, json=ADDRESS).json()
    assert user.get("/users/me/addresses", headers=bob).json() == []
    stolen = user.put(f"/users/me/addresses/{secret['id']}", headers=bob, json={**ADDRESS, "city": "X"})
    unknown = user.put("/users/me/addresses/0123456789abcdef", headers=bob, json=ADDRESS)
    assert stolen.status_code == unknown.status_code == 404
    assert stolen.json() == unknown.json()
    assert user.delete(f"/users/me/addresses/{secret['id']}", headers=bob).status_code == 404
    assert user.get("/users/me/addresses", headers=ada).json() == [secret]


def test_at_most_twenty_addresses(user: TestClient, tokens: TokenFactory) -> None:
    headers = as_user(tokens)
    for i in range(20):
        response = user.post("/users/me/addresses", headers=headers, json={**ADDRESS, "label": f"a{i}"})
        assert response.status_code == 201
    over = user.post("/users/me/addresses", headers=headers, json=ADDRESS)
    assert over.status_code == 409
    assert error_code(over) == "address_limit" and over.json()["error"]["details"] == {"max_addresses": 20}
    first = user.get("/users/me/addresses", headers=headers).json()[0]
    user.delete(f"/users/me/addresses/{first['id']}", headers=headers)
    assert user.post("/users/me/addresses", headers=headers, json=ADDRESS).status_code == 201


def test_a_long_address_id_is_a_json_422(user: TestClient, tokens: TokenFactory) -> None:
    response = user.delete("/users/me/addresses/" + "a" * 65, headers=as_user(tokens))
    assert response.status_code == 422 and error_code(response) == "validation_error"


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in ADDRESS.items() if k != "street"},
        {k: v for k, v in ADDRESS.items() if k != "label"},
        {**ADDRESS, "city": ""},
        {**ADDRESS, "country": "N"},
        {**ADDRESS, "postal_code": "1" * 21},
        {**ADDRESS, "street": 12},
        {**ADDRESS, "name": None},
        {**ADDRESS, "user_id": "bob"},
        [ADDRESS],
        "home",
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_address_bodies_are_validated(user: TestClient, tokens: TokenFactory, method: str, body: Any) -> None:
    headers = as_user(tokens)
    target = "/users/me/addresses"
    if method == "PUT":
        target += "/" + user.post(target, headers=headers, json=ADDRESS).json()["id"]
    response = user.request(method, target, headers=headers, json=body)
    assert response.status_code == 422, response.text
    assert error_code(response) == "validation_error"


# --- admin listing ---------------------------------------------------------------------------------------


def test_users_listing_is_admin_only_and_paged(user: TestClient, tokens: TokenFactory) -> None:
    for sub in ("u1", "u2", "u3"):
        user.get("/users/me", headers=as_user(tokens, sub))
    user.post("/users/me/addresses", headers=as_user(tokens, "u1"), json=ADDRESS)

    customer = user.get("/users", headers=as_user(tokens, "u1"))
    assert customer.status_code == 403 and error_code(customer) == "forbidden"

    admin = as_user(tokens, "boss", groups=["customer", "admin"])
    page1 = user.get("/users?page=1&page_size=2", headers=admin).json()
    page2 = user.get("/users", params={"page": 2, "page_size": 2}, headers=admin).json()
    assert (page1["page"], page1["page_size"], page1["total"]) == (1, 2, 3)
    assert [u["id"] for u in page1["items"] + page2["items"]] == ["u1", "u2", "u3"]
    assert "addresses" not in str(page1) and "Damrak" not in str(page1)
    assert user.get("/users?page=9", headers=admin).json()["items"] == []


@pytest.mark.parametrize("query", ["page=0", "page_size=0", "page_size=101", "page=abc", "page=-1"])
def test_users_listing_rejects_bad_paging(user: TestClient, tokens: TokenFactory, query: str) -> None:
    response = user.get(f"/users?{query}", headers=as_user(tokens, "boss", groups=["admin"]))
    assert response.status_code == 422 and error_code(response) == "validation_error"


# --- authentication on every endpoint, and request-level bad input ----------------------------------------

# (method, path, body, what a good admin token gets: its status and, for an error, its code)
ENDPOINTS = [
    ("GET", "/users/me", None, 200, None),
    ("PUT", "/users/me", {"name": "Ada"}, 200, None),
    ("GET", "/users/me/addresses", None, 200, None),
    ("POST", "/users/me/addresses", ADDRESS, 201, None),
    ("PUT", "/users/me/addresses/abc", ADDRESS, 404, "address_not_found"),
    ("DELETE", "/users/me/addresses/abc", None, 404, "address_not_found"),
    ("GET", "/users", None, 200, None),
]


def bad_credentials(tokens: TokenFactory) -> dict[str, dict[str, str]]:
    return {
        "missing": {},
        "not bearer": {"Authorization": "Basic YWRhOnNlY3JldA=="},
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "expired": tokens.headers(sub="ada", expires_in=-60),
        "forged (same kid, other key)": TokenFactory(kid=tokens.kid).headers(sub="ada", groups=["admin"]),
        "wrong audience": tokens.headers(sub="ada", aud="other-app"),
        "wrong issuer": tokens.headers(sub="ada", iss="someone-else"),
        "refresh, not access": tokens.headers(sub="ada", typ="refresh"),
    }


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), ENDPOINTS)
def test_every_endpoint_needs_a_valid_token(
    user: TestClient, tokens: TokenFactory, method: str, path: str, body: Any, status: int, code: str | None
) -> None:
    for case, headers in bad_credentials(tokens).items():
        response = user.request(method, path, headers=headers, json=body)
        assert response.status_code == 401, (case, response.text)
        assert error_code(response) == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    # Control: the same request with a good admin token gets past authentication, to the endpoint's own
    # answer (a missing address is the endpoint's 404, not an unknown route's).
    good = user.request(method, path, headers=as_user(tokens, groups=["admin"]), json=body)
    assert good.status_code == status, good.text
    if code is not None:
        assert error_code(good) == code


def test_an_unknown_key_while_auth_is_unreachable_is_503_not_500(user: TestClient) -> None:
    # An unknown kid makes the verifier fetch AUTH_JWKS_URL; here it points at a closed port.
    user.app.state.verifier.jwks_url = "http://127.0.0.1:9/.well-known/jwks.json"  # type: ignore[attr-defined]
    response = user.get("/users/me", headers=TokenFactory(kid="rotated-key").headers())
    assert response.status_code == 503 and error_code(response) == "auth_unavailable"


@pytest.mark.parametrize(("method", "path", "_"), [e[:3] for e in ENDPOINTS if e[2] is not None])
def test_malformed_json_is_400(
    user: TestClient, tokens: TokenFactory, method: str, path: str, _: Any
) -> None:
    headers = {**as_user(tokens), "content-type": "application/json"}
    response = user.request(method, path, headers=headers, content=b'{"name": "Ada"')
    assert response.status_code == 400 and error_code(response) == "malformed_json"


@pytest.mark.parametrize(("method", "path", "body"), [e[:3] for e in ENDPOINTS if e[2] is not None])
def test_oversized_body_is_413(
    user: TestClient, tokens: TokenFactory, method: str, path: str, body: Any
) -> None:
    response = user.request(method, path, headers=as_user(tokens), json={**body, "pad": "x" * 70_000})
    assert response.status_code == 413 and error_code(response) == "payload_too_large"


def test_operational_endpoints_answer(user: TestClient) -> None:
    assert user.get("/healthz").json() == {"status": "ok"}
    assert user.get("/readyz").status_code == 200
    assert "http_request" in user.get("/metrics").text


@pytest.mark.parametrize(("field", "value"), PLANTED_ADDRESS_VALUES, ids=PLANTED_IDS)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_planted_address_values_are_refused_as_everywhere(
    user: TestClient, tokens: TokenFactory, method: str, field: str, value: str
) -> None:
    """The one Address rule (services.contracts): what checkout would refuse never enters the address book."""
    headers = as_user(tokens)
    target = "/users/me/addresses"
    if method == "PUT":
        target += "/" + user.post(target, headers=headers, json=ADDRESS).json()["id"]
    response = user.request(method, target, headers=headers, json=planted_address(field, value, ADDRESS))
    assert_refused_field(response, field)
    stored = user.get("/users/me/addresses", headers=headers).json()
    assert all(a[field] == ADDRESS[field] for a in stored)
