"""The /api/ JSON API and the session: Bearer or cookie, refresh, headers the mesh routes on."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.services.frontend.fake_shop import DECLINED, FakeShop, csrf, log_in
from tests.services.helpers import (
    ADDRESS,
    PLANTED_ADDRESS_VALUES,
    PLANTED_IDS,
    assert_refused_field,
    planted_address,
)

CHECKOUT = {
    "shipping_address": ADDRESS,
    "card": {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"},
}


def bearer(fake: FakeShop, email: str = "ada@example.com") -> dict[str, str]:
    return {"Authorization": f"Bearer {fake.access_token(email)}"}


def test_register_and_login_through_the_api(client: TestClient, fake: FakeShop) -> None:
    created = client.post(
        "/api/register", json={"email": "new@example.com", "password": "long-enough", "name": "New"}
    )
    assert created.status_code == 201 and created.json()["email"] == "new@example.com"
    assert client.post(
        "/api/register", json={"email": "new@example.com", "password": "long-enough", "name": "N"}
    ).json() == {"error": {"code": "email_taken", "message": "an account with this email exists"}}
    login = client.post("/api/login", json={"email": "new@example.com", "password": "long-enough"})
    assert login.status_code == 200
    assert set(login.json()) >= {"access_token", "refresh_token", "expires_in"}
    assert "shop_access" in client.cookies  # the API login also opens a browser session


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ('{"email": "a@example.com",', 400, "malformed_json"),
        ('{"email": "a@example.com"}', 422, "validation_error"),
        ('{"email": "a@example.com", "password": "x", "extra": 1}', 422, "validation_error"),
    ],
)
def test_api_bad_input_is_a_json_error(client: TestClient, body: str, status: int, code: str) -> None:
    response = client.post("/api/login", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_wrong_password_is_401_json(client: TestClient) -> None:
    response = client.post("/api/login", json={"email": "ada@example.com", "password": "nope"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_credentials"


def test_products_api_passes_the_catalog_through(client: TestClient) -> None:
    page = client.get("/api/products?page=2&page_size=5&category=kitchen")
    assert page.status_code == 200
    assert page.headers["x-product-served-by"] == "product/v2"
    assert page.json()["page"] == 2 and [p["id"] for p in page.json()["items"]] == [
        "mug-11",
        "mug-13",
        "mug-15",
    ]
    assert client.get("/api/products/mug-1").json()["name"] == "Mug 1"
    assert client.get("/api/products/nope").status_code == 404
    assert client.get("/api/products?page_size=1000").status_code == 422


def test_api_needs_a_valid_token(client: TestClient, fake: FakeShop) -> None:
    for path in ("/api/cart", "/api/orders", "/api/orders/x", "/api/notifications"):
        assert client.get(path).status_code == 401, path
    forged = client.get("/api/cart", headers={"Authorization": "Bearer not.a.token"})
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "unauthorized"
    expired = {"Authorization": f"Bearer {fake.access_token('ada@example.com', expires_in=-60)}"}
    assert client.get("/api/cart", headers=expired).json()["error"]["message"] == "token expired"


def test_cart_and_idempotent_checkout_with_bearer(client: TestClient, fake: FakeShop) -> None:
    auth = bearer(fake)
    added = client.post("/api/cart/items", json={"product_id": "mug-2", "quantity": 2}, headers=auth)
    assert added.status_code == 201
    assert client.get("/api/cart", headers=auth).json()["subtotal_cents"] == 2004
    key = {"Idempotency-Key": "load-test-key-1", **auth}
    first = client.post("/api/checkout", json=CHECKOUT, headers=key)
    again = client.post("/api/checkout", json=CHECKOUT, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and len(fake.orders) == 1
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    order_id = first.json()["id"]
    assert [o["id"] for o in client.get("/api/orders", headers=auth).json()["items"]] == [order_id]
    assert client.get(f"/api/orders/{order_id}", headers=auth).json()["tracking_number"] == "TRK123456"
    assert client.get(f"/api/orders/{order_id}", headers=bearer(fake, "bea@example.com")).status_code == 404
    assert (
        client.get("/api/notifications", headers=auth).json()["items"][0]["subject"]
        == "Your order is confirmed"
    )


def test_checkout_bad_input(client: TestClient, fake: FakeShop) -> None:
    auth = bearer(fake)
    missing_key = client.post("/api/checkout", json=CHECKOUT, headers=auth)
    assert missing_key.status_code == 422
    assert missing_key.json()["error"]["details"][0]["loc"] == ["header", "Idempotency-Key"]
    key = {"Idempotency-Key": "key-0000-0001", **auth}
    bad_card = {**CHECKOUT, "card": {"number": "abc", "expiry": "99/99", "cvc": "1"}}
    assert client.post("/api/checkout", json=bad_card, headers=key).status_code == 422
    client.post("/api/cart/items", json={"product_id": "mug-2"}, headers=auth)
    declined = {**CHECKOUT, "card": {**CHECKOUT["card"], "number": DECLINED}}
    response = client.post("/api/checkout", json=declined, headers=key)
    assert response.status_code == 402
    assert (
        response.json()["error"]["code"] == "card_declined"
        and "order_id" in response.json()["error"]["details"]
    )
    calls_before = len(fake.calls("order"))
    for quantity in (0, True, "2", 2.5, 100):  # JSON true is not 1: the same strict rule as order's
        bad_qty = client.post(
            "/api/cart/items", json={"product_id": "mug-2", "quantity": quantity}, headers=auth
        )
        assert bad_qty.status_code == 422, (quantity, bad_qty.text)
        assert bad_qty.json()["error"]["details"][0]["loc"][-1] == "quantity"
    assert len(fake.calls("order")) == calls_before  # refused at the frontend, never sent on


def test_cookie_session_works_for_the_api_with_csrf_header_on_writes(client: TestClient) -> None:
    log_in(client)
    assert client.get("/api/cart").status_code == 200
    no_header = client.post("/api/cart/items", json={"product_id": "mug-2", "quantity": 1})
    assert no_header.status_code == 403 and no_header.json()["error"]["code"] == "csrf_failed"
    ok = client.post(
        "/api/cart/items", json={"product_id": "mug-2", "quantity": 1}, headers={"X-CSRF-Token": csrf(client)}
    )
    assert ok.status_code == 201


def test_identity_and_routing_headers_reach_every_service(client: TestClient, fake: FakeShop) -> None:
    log_in(client, "bea@example.com")
    incoming = {
        "x-request-id": "req-42",
        "canary": "true",
        "user-agent": "Mobile Safari",
        "x-user-group": "spoofed",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    client.cookies.set("canary", "true")
    client.get("/", headers=incoming)
    client.get("/cart", headers=incoming)
    client.get("/notifications", headers=incoming)
    user_id = fake.users["bea@example.com"]["id"]
    for service in ("product", "order", "notification"):
        sent = fake.calls(service)[-1].headers
        assert sent["x-user-id"] == user_id, service
        assert sent["x-user-group"] == "beta", service  # from the token, not from the caller
        assert sent["authorization"].startswith("Bearer "), service
        assert sent["x-request-id"] == "req-42" and sent["canary"] == "true", service
        assert sent["user-agent"] == "Mobile Safari", service
        assert sent["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-"), service  # same trace
        # the token cookies stay in the frontend; others (routing cookies) are passed on
        assert sent["cookie"] == "shop_group=beta; canary=true", service


@pytest.mark.parametrize(
    ("groups", "expected"),
    [(("customer",), "customer"), (("customer", "admin"), "admin"), (("admin", "beta"), "beta")],
)
def test_user_group_header_from_the_token(
    client: TestClient, fake: FakeShop, groups: tuple[str, ...], expected: str
) -> None:
    fake.add_user("x@example.com", groups=groups)
    client.get("/api/orders", headers=bearer(fake, "x@example.com"))
    assert fake.calls("order")[-1].headers["x-user-group"] == expected


def test_anonymous_visitors_send_no_identity(client: TestClient, fake: FakeShop) -> None:
    """The contract: x-user-id and x-user-group come only from a verified token. A visitor claiming to be
    someone (or an admin) gets nothing passed on; routing headers set on purpose still travel."""
    spoofed = {
        "x-user-group": "admin",
        "x-user-id": "someone-else",
        "canary": "true",
        "cookie": "canary=true",
        "user-agent": "Mobile Safari",
    }
    client.get("/", headers=spoofed)
    client.get("/api/products", headers=spoofed)
    for call in fake.calls("product")[-2:]:
        sent = call.headers
        assert "authorization" not in sent and "x-user-id" not in sent and "x-user-group" not in sent
        assert sent["canary"] == "true" and sent["cookie"] == "canary=true"
        assert sent["user-agent"] == "Mobile Safari"


def test_expired_access_cookie_is_refreshed_transparently(client: TestClient, fake: FakeShop) -> None:
    log_in(client)
    old_refresh = client.cookies["shop_refresh"]
    client.cookies.set("shop_access", fake.access_token("ada@example.com", expires_in=-60))
    page = client.get("/cart")
    assert page.status_code == 200 and "Your cart" in page.text
    assert [r.url.path for r in fake.calls("auth")][-1] == "/auth/refresh"
    renewed = page.headers.get_list("set-cookie")
    assert any(c.startswith("shop_access=ey") for c in renewed)
    assert client.cookies["shop_refresh"] != old_refresh  # rotated


def test_a_dead_refresh_token_logs_out_quietly(client: TestClient, fake: FakeShop) -> None:
    log_in(client)
    fake.refresh_tokens.clear()
    client.cookies.set("shop_access", "garbage")
    response = client.get("/cart", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert any(
        c.startswith("shop_refresh=;") and "Max-Age=0" in c for c in response.headers.get_list("set-cookie")
    )


def test_api_outage_is_json_503(client: TestClient, fake: FakeShop) -> None:
    fake.down.add("product")
    response = client.get("/api/products")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "dependency_unavailable",
        "message": "product.test is unavailable",
    }


def test_operational_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/api/nothing-here").json()["error"]["code"] == "not_found"


def test_cross_site_form_cannot_log_in_through_the_api(client: TestClient) -> None:
    """A plain HTML form (text/plain) cannot post JSON: no login CSRF through /api/login."""
    body = '{"email": "ada@example.com", "password": "secret-pass"}'
    response = client.post("/api/login", content=body, headers={"content-type": "text/plain"})
    assert response.status_code == 422
    assert "shop_access" not in client.cookies


@pytest.mark.parametrize(("field", "value"), PLANTED_ADDRESS_VALUES, ids=PLANTED_IDS)
def test_planted_address_values_are_refused_before_order_sees_them(
    client: TestClient, fake: FakeShop, field: str, value: str
) -> None:
    """The one Address rule (services.contracts): the JSON API refuses what order would, naming the field."""
    auth = bearer(fake)
    client.post("/api/cart/items", json={"product_id": "mug-2"}, headers=auth)
    body = {**CHECKOUT, "shipping_address": planted_address(field, value, CHECKOUT["shipping_address"])}
    response = client.post("/api/checkout", json=body, headers={"Idempotency-Key": "key-planted-1", **auth})
    assert_refused_field(response, field)
    assert fake.calls("order", "/orders") == []
