"""A real browser buys something in the web shop: headless Chromium (Debian's package) driven by Playwright.

Needs every service running as a process (`shop_stack`, tests/conftest.py). Screenshots of the catalog, cart
and order pages go to artifacts/screenshots/ (ignored by git).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from scripts.dev import Stack
from tests.browser.chromium import CHROMIUM

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no /usr/bin/chromium: install Debian's package (apt-get install -y chromium) to run it",
    ),
]


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_buy_a_product_through_the_web_shop(page: Page) -> None:
    email = f"browser-{uuid.uuid4().hex[:8]}@example.com"
    password = "browser-password"

    # The catalog, with the variant banner naming the product version that answered.
    page.goto("/")
    expect(page.get_by_test_id("variant-banner")).to_contain_text(
        "frontend stable · v1 · served by product/v1"
    )
    expect(page.locator(".grid .card").first).to_be_visible()
    page.get_by_label("Category").select_option("coffee")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"category=coffee"))
    shot(page, "catalog")

    # Register (which logs in), log out, and log in again.
    page.get_by_role("link", name="Register").click()
    page.get_by_label("Name").fill("Browser Tester")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Welcome! Your account is ready.")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()

    # A product into the cart, then two of them.
    page.locator(".grid .card a").first.click()
    product_name = page.locator("h1").inner_text().strip()
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_text("Added to your cart.")).to_be_visible()
    page.get_by_label(f"Quantity of {product_name}").fill("2")
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_text("Cart updated.")).to_be_visible()
    expect(page.get_by_label(f"Quantity of {product_name}")).to_have_value("2")
    shot(page, "cart")

    # Checkout with the test card shown on the page.
    page.get_by_role("link", name="Check out").click()
    expect(page.locator("#card-hint")).to_contain_text("4242 4242 4242 4242")
    page.get_by_label("Full name").fill("Browser Tester")
    page.get_by_label("Street and number").fill("Kerkstraat 1")
    page.get_by_label("Postal code").fill("1017 GA")
    page.get_by_label("City").fill("Amsterdam")
    page.get_by_label("Country").fill("NL")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry").fill("12/30")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name=re.compile("Place order")).click()

    # The order page: paid, with a tracking number, then shipped (the test stack ships after 2 s).
    expect(page.get_by_text("Thank you! Your order is placed.")).to_be_visible()
    expect(page.get_by_test_id("order-status")).to_have_text("paid")
    expect(page.get_by_test_id("tracking-number")).not_to_be_empty()
    expect(page.locator(".lines")).to_contain_text(f"2 \u00d7 {product_name}")
    for _ in range(20):
        page.reload()
        if page.get_by_test_id("order-status").inner_text() == "shipped":
            break
        page.wait_for_timeout(500)
    expect(page.get_by_test_id("order-status")).to_have_text("shipped")
    expect(page.locator(".history")).to_contain_text("paid")
    shot(page, "order")

    page.get_by_role("link", name="Orders", exact=True).click()
    expect(page.locator(".lines")).to_contain_text("shipped")
    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_text("Your order is confirmed")).to_be_visible()


@pytest.mark.parametrize("service", ["payment", "order"])
def test_swagger_ui_renders_without_internet(
    offline_page: tuple[Page, list[str]], running_stack: Stack, service: str
) -> None:
    page, elsewhere = offline_page
    page.goto(f"{running_stack.url(service)}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(service)
    expect(page.locator(".opblock").first).to_be_visible()
    shot(page, f"docs-{service}")
    assert elsewhere == [], f"/docs asked other origins: {elsewhere}"
