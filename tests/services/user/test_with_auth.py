"""user + auth together: tokens issued by the real auth app are accepted by user via auth's JWKS."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


def bearer(auth: TestClient, email: str, name: str = "Ada Lovelace") -> dict[str, str]:
    auth.post("/auth/register", json={"email": email, "password": PASSWORD, "name": name})
    token = auth.post("/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_profile_comes_from_the_auth_token(clients: tuple[TestClient, TestClient]) -> None:
    auth, user = clients
    registered = auth.post(
        "/auth/register", json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
    )
    headers = bearer(auth, "ada@example.com")
    me = user.get("/users/me", headers=headers).json()
    assert me["id"] == registered.json()["id"]
    assert (me["email"], me["name"], me["groups"]) == ("ada@example.com", "Ada", ["customer"])


def test_admin_from_admin_emails_can_list_users(clients: tuple[TestClient, TestClient]) -> None:
    auth, user = clients
    customer = bearer(auth, "ada@example.com")
    admin = bearer(auth, "admin@example.com", name="Admin")
    user.get("/users/me", headers=customer)
    assert user.get("/users", headers=customer).status_code == 403
    listing = user.get("/users", headers=admin)
    assert listing.status_code == 200
    assert [u["email"] for u in listing.json()["items"]] == ["ada@example.com"]


def test_refreshed_tokens_work_and_the_limit_holds_under_parallel_posts(
    clients: tuple[TestClient, TestClient],
) -> None:
    auth, user = clients
    bearer(auth, "busy@example.com")
    pair = auth.post("/auth/login", json={"email": "busy@example.com", "password": PASSWORD}).json()
    fresh = auth.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    headers = {"Authorization": f"Bearer {fresh['access_token']}"}
    address = {
        "label": "x",
        "name": "B",
        "street": "s 1",
        "city": "c",
        "postal_code": "1011",
        "country": "NL",
    }
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = Counter(
            pool.map(
                lambda _: user.post("/users/me/addresses", headers=headers, json=address).status_code,
                range(25),
            )
        )
    assert statuses == Counter({201: 20, 409: 5})
    assert len(user.get("/users/me/addresses", headers=headers).json()) == 20
