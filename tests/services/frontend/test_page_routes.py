"""The web shop's pages as a shopper sees them, against fakes of the other services."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.services.frontend.fake_shop import DECLINED, FakeShop, csrf, log_in, make_client
from tests.services.helpers import PLANTED_ADDRESS_VALUES, PLANTED_IDS

CHECKOUT = {
    "name": "Ada Lovelace",
    "street": "Kerkstraat 1",
    "city": "Amsterdam",
    "postal_code": "1017 GA",
    "country": "nl",
    "card_number": "4242 4242 4242 4242",
    "expiry": "12/30",
    "cvc": "123",
    "idempotency_key": "form-key-0001",
}


def test_catalog_lists_products_with_banner_and_paging(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["x-served-by"] == "frontend/v1"
    assert "text/html" in page.headers["content-type"]
    assert "Mug 1" in page.text and "€10.01" in page.text
    assert "frontend <strong>stable</strong> · v1" in page.text
    assert "served by <strong>product/v2</strong>" in page.text  # the canary is visible in the browser
    assert 'href="/?page=2"' in page.text  # 15 products, 12 per page
    second = client.get("/?page=2")
    assert "Mug 13" in second.text and "Mug 1<" not in second.text


def test_catalog_filters_by_category_and_search(client: TestClient, fake: FakeShop) -> None:
    page = client.get("/?category=coffee&q=mug 1")
    assert page.status_code == 200
    sent = fake.calls("product", "/products")[-1].url.params
    assert sent["category"] == "coffee" and sent["q"] == "mug 1"
    assert "Mug 10" in page.text and "Mug 11" not in page.text  # 11 is in kitchen
    assert '<option value="coffee" selected>' in page.text


def test_catalog_pages_reuse_the_category_list_but_ask_for_products_every_time(
    client: TestClient, fake: FakeShop
) -> None:
    """One call to product per catalog page (docs/performance.md): the categories (seed data) are reused for
    `categories_cache_seconds`; the product list (stock, the answering version for the banner) never is."""
    for _ in range(3):
        assert "Kitchen" in client.get("/").text
    assert len(fake.calls("product", "/categories")) == 1
    assert len(fake.calls("product", "/products")) == 3


def test_catalog_asks_for_categories_on_every_page_without_the_cache(fake: FakeShop) -> None:
    for client in make_client(fake, categories_cache_seconds=0):
        for _ in range(3):
            assert client.get("/").status_code == 200
    assert len(fake.calls("product", "/categories")) == 3


def test_catalog_tolerates_junk_paging(client: TestClient) -> None:
    assert client.get("/?page=abc").status_code == 200
    assert client.get("/?page=-5").status_code == 200


def test_product_page_and_unknown_product(client: TestClient) -> None:
    page = client.get("/products/mug-3")
    assert page.status_code == 200
    assert "Mug 3" in page.text and "Add to cart" in page.text and 'class="badge">new' in page.text
    missing = client.get("/products/nope")
    assert missing.status_code == 404
    assert "Not found" in missing.text and "Traceback" not in missing.text


def test_product_images_come_through_the_frontend(client: TestClient) -> None:
    image = client.get("/images/kitchen.svg")
    assert image.status_code == 200 and image.headers["content-type"] == "image/svg+xml"
    assert client.get("/images/..%2Fsecret.svg").status_code == 404


def test_login_sets_httponly_session_cookies(client: TestClient) -> None:
    response = log_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookies = response.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith("shop_access="))
    refresh = next(c for c in cookies if c.startswith("shop_refresh="))
    for cookie in (access, refresh):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    group = next(c for c in cookies if c.startswith("shop_group="))
    assert group.startswith("shop_group=customer;") and "HttpOnly" not in group  # a routing hint, readable
    home = client.get("/")
    assert "Signed in as ada@example.com" in home.text and "Log out" in home.text


def test_login_with_wrong_password_shows_a_friendly_error(client: TestClient) -> None:
    response = client.post(
        "/login", data={"email": "ada@example.com", "password": "wrong", "csrf_token": csrf(client)}
    )
    assert response.status_code == 401
    assert "do not match an account" in response.text
    assert "shop_access" not in client.cookies


def test_login_form_validation(client: TestClient) -> None:
    response = client.post(
        "/login", data={"email": "not-an-email", "password": "", "csrf_token": csrf(client)}
    )
    assert response.status_code == 422
    assert "Please enter a valid email address." in response.text
    assert 'value="not-an-email"' in response.text  # what the shopper typed is kept


def test_forms_without_a_valid_csrf_token_are_refused(client: TestClient) -> None:
    csrf(client)
    form = {"email": "ada@example.com", "password": "secret-pass"}
    assert client.post("/login", data=form).status_code == 403
    assert client.post("/login", data={**form, "csrf_token": "forged.token"}).status_code == 403
    client.cookies.set("shop_csrf", "nonce.badsignature")
    refused = client.post("/login", data={**form, "csrf_token": "nonce.badsignature"})
    assert refused.status_code == 403 and "form expired" in refused.text


def test_register_logs_the_new_user_in(client: TestClient, fake: FakeShop) -> None:
    form = {"name": "Cy", "email": "cy@example.com", "password": "long-enough", "beta_tester": "on"}
    response = client.post("/register", data={**form, "csrf_token": csrf(client)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert fake.users["cy@example.com"]["groups"] == ["customer", "beta"]
    assert "Welcome! Your account is ready." in client.get(response.headers["location"]).text
    assert "Welcome!" not in client.get("/").text  # a one-off notice: a reload does not repeat it


def test_register_bad_input_and_duplicate(client: TestClient) -> None:
    short = client.post(
        "/register",
        data={"name": "", "email": "x@example.com", "password": "short", "csrf_token": csrf(client)},
    )
    assert short.status_code == 422
    assert "Please fill in your name." in short.text and "at least 8 characters" in short.text
    taken = client.post(
        "/register",
        data={
            "name": "Ada",
            "email": "ada@example.com",
            "password": "long-enough",
            "csrf_token": csrf(client),
        },
    )
    assert taken.status_code == 409 and "already exists" in taken.text


def test_pages_that_need_a_login_redirect_to_it(client: TestClient) -> None:
    for path in ("/cart", "/checkout", "/orders", "/orders/abc", "/notifications"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=%2F"), path


def test_login_redirects_back_but_never_off_site(client: TestClient) -> None:
    form = {"email": "ada@example.com", "password": "secret-pass", "csrf_token": csrf(client)}
    back = client.post("/login", data={**form, "next": "/orders"}, follow_redirects=False)
    assert back.headers["location"] == "/orders"
    query = client.post("/register", data={**form, "name": "Ada", "next": "/?category=coffee"})
    assert query.status_code == 409  # (already registered) the next target survives the form round trip
    assert 'value="/?category=coffee"' in query.text
    evil = client.post("/login", data={**form, "next": "//evil.example/x"}, follow_redirects=False)
    assert evil.headers["location"] == "/"


def test_cart_add_change_and_remove(client: TestClient) -> None:
    log_in(client)
    added = client.post(
        "/cart/items", data={"product_id": "mug-2", "quantity": "2", "csrf_token": csrf(client)}
    )
    assert added.status_code == 200 and "Added to your cart." in added.text
    assert "Mug 2" in added.text and "€20.04" in added.text  # 2 x 10.02
    assert '<img class="thumb" src="/images/kitchen.svg"' in added.text
    changed = client.post("/cart/items/mug-2", data={"quantity": "3", "csrf_token": csrf(client)})
    assert "€30.06" in changed.text
    bad = client.post("/cart/items/mug-2", data={"quantity": "lots", "csrf_token": csrf(client)})
    assert bad.status_code == 422 and "whole numbers" in bad.text
    removed = client.post("/cart/items/mug-2/remove", data={"csrf_token": csrf(client)})
    assert "Your cart is empty" in removed.text


def test_adding_to_cart_when_logged_out_goes_to_login(client: TestClient) -> None:
    response = client.post(
        "/cart/items",
        data={"product_id": "mug-2", "quantity": "1", "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fproducts%2Fmug-2"


def _fill_cart(client: TestClient) -> None:
    log_in(client)
    client.post("/cart/items", data={"product_id": "mug-1", "quantity": "1", "csrf_token": csrf(client)})


def test_checkout_places_the_order_and_shows_it(client: TestClient, fake: FakeShop) -> None:
    _fill_cart(client)
    form = client.get("/checkout")
    assert form.status_code == 200
    assert "4242 4242 4242 4242" in form.text and "card declined" in form.text  # the test-card hint
    assert 'value="Kerkstraat 1"' in form.text  # pre-filled from the address book
    placed = client.post("/checkout", data={**CHECKOUT, "csrf_token": csrf(client)}, follow_redirects=False)
    assert placed.status_code == 303
    order_page = client.get(placed.headers["location"])
    assert "Your order is placed" in order_page.text
    assert 'data-testid="order-status">paid' in order_page.text and "TRK123456" in order_page.text
    sent = next(r for r in fake.calls("order", "/orders") if r.method == "POST")
    assert sent.headers["idempotency-key"] == "form-key-0001"
    assert b'"country":"NL"' in sent.content and b'"number":"4242424242424242"' in sent.content
    orders = client.get("/orders")
    assert "paid" in orders.text and "€14.96" in orders.text  # 10.01 + 4.95 shipping


def test_double_submitted_checkout_is_one_order(client: TestClient, fake: FakeShop) -> None:
    _fill_cart(client)
    first = client.post("/checkout", data={**CHECKOUT, "csrf_token": csrf(client)}, follow_redirects=False)
    again = client.post("/checkout", data={**CHECKOUT, "csrf_token": csrf(client)}, follow_redirects=False)
    assert first.headers["location"] == again.headers["location"]
    assert len(fake.orders) == 1


def test_checkout_bad_input_and_declined_card(client: TestClient) -> None:
    _fill_cart(client)
    bad = client.post(
        "/checkout",
        data={
            **CHECKOUT,
            "card_number": "12",
            "expiry": "13/30",
            "country": "Holland",
            "csrf_token": csrf(client),
        },
    )
    assert bad.status_code == 422
    assert "12 to 19 digits" in bad.text and "MM/YY" in bad.text and "two-letter country code" in bad.text
    declined = client.post(
        "/checkout", data={**CHECKOUT, "card_number": DECLINED, "csrf_token": csrf(client)}
    )
    assert declined.status_code == 402 and "Your card was declined" in declined.text
    assert DECLINED not in declined.text  # card numbers are never echoed back


def test_checkout_during_an_outage_offers_a_safe_retry_with_the_same_key(
    client: TestClient, fake: FakeShop
) -> None:
    _fill_cart(client)
    error = {"error": {"code": "payment_unavailable", "message": "payment is unavailable"}}
    fake.errors["/orders"] = httpx.Response(503, json=error)
    retry = client.post("/checkout", data={**CHECKOUT, "csrf_token": csrf(client)})
    assert retry.status_code == 503
    assert "payment is unavailable" in retry.text and "never be charged twice" in retry.text
    assert 'name="idempotency_key" value="form-key-0001"' in retry.text  # the retry reuses the key
    assert 'value="Kerkstraat 1"' in retry.text  # the address is kept
    del fake.errors["/orders"]
    placed = client.post("/checkout", data={**CHECKOUT, "csrf_token": csrf(client)}, follow_redirects=False)
    assert placed.status_code == 303 and len(fake.orders) == 1


@pytest.mark.parametrize(
    ("status", "code", "shown"),
    [
        (409, "checkout_in_progress", "still being processed"),
        (504, "payment_outcome_unknown", "payment was not confirmed in time"),
    ],
)
def test_a_checkout_that_may_still_succeed_keeps_its_key(
    client: TestClient, fake: FakeShop, status: int, code: str, shown: str
) -> None:
    """A new key here could buy twice: the first attempt may still complete."""
    _fill_cart(client)
    fake.errors["/orders"] = httpx.Response(status, json={"error": {"code": code, "message": "internal"}})
    retry = client.post("/checkout", data={**CHECKOUT, "csrf_token": csrf(client)})
    assert retry.status_code == status
    assert shown in retry.text and "never be charged twice" in retry.text
    assert 'name="idempotency_key" value="form-key-0001"' in retry.text


def test_empty_cart_checkout_goes_back_to_the_cart(client: TestClient) -> None:
    log_in(client)
    response = client.get("/checkout", follow_redirects=False)
    assert response.headers["location"] == "/cart"
    assert "Your cart is empty: add something first." in client.get("/cart").text


def test_notifications_page(client: TestClient) -> None:
    log_in(client)
    page = client.get("/notifications")
    assert page.status_code == 200 and "Your order is confirmed" in page.text


def test_unknown_order_is_a_friendly_404(client: TestClient) -> None:
    log_in(client)
    page = client.get("/orders/does-not-exist")
    assert page.status_code == 404 and "Not found" in page.text


@pytest.mark.parametrize("outage", ["down", "failing"])
def test_downstream_outage_is_a_friendly_503_page(client: TestClient, fake: FakeShop, outage: str) -> None:
    if outage == "down":
        fake.down.add("product")
    else:
        fake.failing["product"] = 503
    page = client.get("/")
    assert page.status_code == 503
    assert "temporarily unavailable" in page.text and "Traceback" not in page.text
    assert "frontend <strong>stable</strong>" in page.text  # still a shop page, with the banner


def test_downstream_500_is_a_friendly_502_page(client: TestClient, fake: FakeShop) -> None:
    log_in(client)
    fake.failing["order"] = 500
    page = client.get("/orders")
    assert page.status_code == 502 and "having trouble" in page.text


def test_logout_clears_the_session(client: TestClient) -> None:
    log_in(client)
    response = client.post("/logout", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert response.status_code == 303
    cleared = [c for c in response.headers.get_list("set-cookie") if "Max-Age=0" in c]
    assert {c.split("=")[0] for c in cleared} == {"shop_access", "shop_refresh", "shop_group"}
    assert client.get("/cart", follow_redirects=False).status_code == 303


def test_variants_change_the_page(client: TestClient, mobile: TestClient, beta: TestClient) -> None:
    assert 'class="variant-stable"' in client.get("/").text
    compact = client_text = mobile.get("/").text
    assert (
        'class="variant-mobile-optimized"' in compact
        and "frontend <strong>mobile-optimized</strong> · v7" in client_text
    )
    assert "Recommended for you" not in compact
    beta_page = beta.get("/").text
    assert (
        "Recommended for you" in beta_page
        and 'href="/products/mug-3">Mug 3</a> <span class="badge">new' in beta_page
    )


def test_invalid_variant_is_refused_at_start() -> None:
    from pydantic import ValidationError

    from services.frontend.settings import Settings

    with pytest.raises(ValidationError):
        Settings(variant="purple")


def test_notices_keep_the_query_of_the_target(client: TestClient) -> None:
    joined = client.post("/canary", data={"join": "true", "next": "/?q=mug", "csrf_token": csrf(client)})
    assert str(joined.url).endswith("/?q=mug")
    assert "Results for “mug”" in joined.text and "You joined the canary" in joined.text
    assert 'name="next" value="/?q=mug"' in joined.text  # the footer form returns here


def test_joining_the_canary_sets_the_cookie_the_mesh_routes_on(client: TestClient, fake: FakeShop) -> None:
    joined = client.post(
        "/canary", data={"join": "true", "next": "/products/mug-1", "csrf_token": csrf(client)}
    )
    assert joined.status_code == 200 and "You joined the canary" in joined.text
    assert fake.calls("product")[-1].headers["cookie"] == "canary=true"
    assert "Leave the canary" in joined.text
    cookie = next(c for c in joined.history[0].headers.get_list("set-cookie") if c.startswith("canary="))
    assert "HttpOnly" not in cookie and "Max-Age=86400" in cookie
    left = client.post("/canary", data={"join": "false", "csrf_token": csrf(client)})
    assert "You left the canary." in left.text and "canary" not in client.cookies


@pytest.mark.parametrize(("field", "value"), PLANTED_ADDRESS_VALUES, ids=PLANTED_IDS)
def test_planted_address_values_are_refused_in_the_checkout_form(
    client: TestClient, fake: FakeShop, field: str, value: str
) -> None:
    """The checkout form applies the one Address rule too: the field is marked, nothing reaches order.
    (Only the country's case is forgiven: a shopper typing `nl` means NL.)"""
    _fill_cart(client)
    form = {**CHECKOUT, field: value, "csrf_token": csrf(client)}
    response = client.post("/checkout", data=form, follow_redirects=False)
    if (field, value) == ("country", "nl"):
        assert response.status_code == 303  # upper-cased to NL and placed
        return
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text  # the field is marked, with the reason
    assert fake.calls("order", "/orders") == []
