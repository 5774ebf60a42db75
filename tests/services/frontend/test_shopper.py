"""The web shop as a shopper sees it (issue 11 item 17): refused cards on the right field in plain words, no
pydantic text anywhere, inline stock messages, one-off notices, paging past the end, why a logged-out
add-to-cart goes to the login page, and the account page (profile and address book)."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from tests.services.frontend.fake_shop import DECLINED, FakeShop, csrf, log_in

CHECKOUT = {
    "name": "Ada Lovelace",
    "street": "Kerkstraat 1",
    "city": "Amsterdam",
    "postal_code": "1017 GA",
    "country": "NL",
    "card_number": "4242 4242 4242 4242",
    "expiry": "12/30",
    "cvc": "123",
    "idempotency_key": "form-key-0001",
}
# What pydantic or the kit would say; a shopper must never read these.
MACHINE_WORDS = re.compile(r"should|String|pattern|Input |Value error|validat|\bloc\b|type=", re.I)


def marked(page: str, field: str) -> str:
    """The error text shown under `field`, asserting the input is marked invalid."""
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page), f"{field} is not marked"
    found = re.search(rf'<p class="error" id="{field}-error"[^>]*>([^<]*)</p>', page)
    assert found, f"no message under {field}"
    return found.group(1)


def fill_cart(client: TestClient) -> None:
    log_in(client)
    client.post("/cart/items", data={"product_id": "mug-1", "quantity": "1", "csrf_token": csrf(client)})


@pytest.mark.parametrize(
    ("card", "field", "words"),
    [
        ({"expiry": "01/20"}, "expiry", "This card has expired"),
        ({"card_number": "4242 4242 4242 4241"}, "card_number", "card number is not valid"),
        ({"card_number": DECLINED}, "card_number", "Your card was declined"),
    ],
    ids=["expired", "luhn", "declined"],
)
def test_a_refused_card_marks_its_field_and_says_why(
    client: TestClient, card: dict[str, str], field: str, words: str
) -> None:
    fill_cart(client)
    page = client.post("/checkout", data={**CHECKOUT, **card, "csrf_token": csrf(client)})
    assert page.status_code in (402, 422)
    assert words in marked(page.text, field)
    assert "request did not validate" not in page.text and not MACHINE_WORDS.search(marked(page.text, field))
    assert 'value="Kerkstraat 1"' in page.text  # what the shopper typed stays


@pytest.mark.parametrize(
    ("path", "form", "fields"),
    [
        (
            "/register",
            {"email": "not-an-email", "password": "short", "name": "x" * 300},
            ["email", "password", "name"],
        ),
        ("/login", {"email": "", "password": ""}, ["email", "password"]),
        (
            "/checkout",
            {
                **CHECKOUT,
                "country": "../../etc/passwd",
                "postal_code": "x" * 40,
                "cvc": "12",
                "expiry": "13/30",
            },
            ["country", "postal_code", "cvc", "expiry"],
        ),
        ("/account", {"name": "", "phone": "call me"}, ["name", "phone"]),
        (
            "/account/addresses",
            {
                "label": "",
                "name": "Ada",
                "street": "x" * 300,
                "city": "A",
                "postal_code": "1",
                "country": "Netherlands",
            },
            ["address-label", "address-street", "address-postal_code", "address-country"],
        ),
    ],
    ids=["register", "login", "checkout", "profile", "address"],
)
def test_no_machine_text_reaches_shoppers(
    client: TestClient, path: str, form: dict[str, str], fields: list[str]
) -> None:
    if path != "/register" and path != "/login":
        fill_cart(client)
    page = client.post(path, data={**form, "csrf_token": csrf(client)})
    assert page.status_code == 422, page.text
    for field in fields:
        message = marked(page.text, field)
        assert message and not MACHINE_WORDS.search(message), (field, message)
    body = page.text.split("<main", 1)[1].split("</main>", 1)[0]
    assert not MACHINE_WORDS.search(re.sub(r"<[^>]+>", " ", body)), body


def test_a_country_the_user_service_refuses_is_explained(client: TestClient) -> None:
    """The user service's own 422 (not caught by the form) is mapped to the field too."""
    log_in(client)
    form = {
        "label": "home",
        "name": "Ada",
        "street": "Damrak 1",
        "city": "Amsterdam",
        "postal_code": "1012 LG",
    }
    page = client.post(
        "/account/addresses", data={**form, "country": "NLD"[:2] + "!", "csrf_token": csrf(client)}
    )
    assert page.status_code == 422
    assert "two-letter country code" in marked(page.text, "address-country")


def test_more_than_in_stock_stays_on_the_product_page_with_the_reason(client: TestClient) -> None:
    log_in(client)
    page = client.post(
        "/cart/items", data={"product_id": "mug-2", "quantity": "7", "csrf_token": csrf(client)}
    )
    assert page.status_code == 409
    assert "<h1>Mug 2" in page.text  # the product page, not an error page
    assert "only 5 left in stock" in marked(page.text, "quantity")
    assert 'value="7"' in page.text


def test_a_page_past_the_last_shows_the_last(client: TestClient) -> None:
    jump = client.get("/?page=99&q=mug", follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"] == "/?q=mug&page=2"
    last = client.get(jump.headers["location"])
    assert "Page 2 of 2" in last.text and "Page 99" not in last.text


def test_order_placed_notice_shows_once(client: TestClient) -> None:
    fill_cart(client)
    placed = client.post("/checkout", data={**CHECKOUT, "csrf_token": csrf(client)}, follow_redirects=False)
    assert placed.status_code == 303 and "notice" not in placed.headers["location"]
    first = client.get(placed.headers["location"])
    assert "Thank you! Your order is placed." in first.text
    reload = client.get(placed.headers["location"])
    assert reload.status_code == 200 and "Thank you! Your order is placed." not in reload.text


def test_add_to_cart_while_logged_out_says_why_and_comes_back(client: TestClient) -> None:
    sent = client.post(
        "/cart/items",
        data={"product_id": "mug-1", "quantity": "2", "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/login?next=%2Fproducts%2Fmug-1"
    login = client.get(sent.headers["location"])
    assert "Please log in to add items to your cart" in login.text
    assert 'name="next" value="/products/mug-1"' in login.text
    form = {"email": "ada@example.com", "password": "secret-pass", "next": "/products/mug-1"}
    back = client.post("/login", data={**form, "csrf_token": csrf(client)}, follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/products/mug-1"


def test_account_page_edits_the_profile_and_the_address_book(client: TestClient, fake: FakeShop) -> None:
    log_in(client)
    page = client.get("/account")
    assert page.status_code == 200
    assert "ada@example.com" in page.text and "Kerkstraat 1" in page.text and 'href="/account"' in page.text

    saved = client.post(
        "/account", data={"name": "Ada King", "phone": "+31 20 123 4567", "csrf_token": csrf(client)}
    )
    assert saved.status_code == 200 and "Your profile is saved." in saved.text
    assert 'value="Ada King"' in saved.text and 'value="+31 20 123 4567"' in saved.text
    [put] = [c for c in fake.calls("user", "/users/me") if c.method == "PUT"]
    assert json.loads(put.content) == {"name": "Ada King", "phone": "+31 20 123 4567"}

    address = {
        "label": "work",
        "name": "Ada King",
        "street": "Damrak 1",
        "city": "Amsterdam",
        "postal_code": "1012 LG",
        "country": "nl",
    }
    added = client.post("/account/addresses", data={**address, "csrf_token": csrf(client)})
    assert "Address added." in added.text and "Damrak 1" in added.text and ", NL" in added.text
    [new_id] = re.findall(r'action="/account/addresses/([^"/]+)/delete"', added.text)[1:]
    removed = client.post(f"/account/addresses/{new_id}/delete", data={"csrf_token": csrf(client)})
    assert "Address removed." in removed.text and "Damrak 1" not in removed.text
    assert client.post("/account", data={"name": "x"}).status_code == 403  # CSRF like every form


def test_account_needs_a_login(client: TestClient) -> None:
    response = client.get("/account", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
