"""order service, cart: prices and names from the product service, stock from Inventory, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from services.kit import ApiError


def test_cart_starts_empty(cart_shop: Any) -> None:
    client, tokens, _, _ = cart_shop
    response = client.get("/cart", headers=tokens.headers())
    assert response.status_code == 200
    assert response.headers["x-served-by"] == "order/v1"
    assert response.json() == {
        "items": [],
        "item_count": 0,
        "subtotal_cents": 0,
        "total_cents": 0,
        "currency": "EUR",
    }


def test_add_change_remove(cart_shop: Any) -> None:
    client, tokens, catalog, _ = cart_shop
    ada = tokens.headers(sub="ada")
    added = client.post("/cart/items", json={"product_id": "mug", "quantity": 2}, headers=ada)
    assert added.status_code == 200
    assert added.json()["items"] == [
        {
            "product_id": "mug",
            "name": "Mug",
            "price_cents": 1200,
            "currency": "EUR",
            "quantity": 2,
            "line_total_cents": 2400,
            "image": "/m.svg",
        }
    ]
    # The product call carried the caller's token and request id (forwarded for the mesh).
    assert catalog.seen[-1].headers["authorization"] == ada["Authorization"]
    assert catalog.seen[-1].headers["x-request-id"] == added.headers["x-request-id"]

    client.post("/cart/items", json={"product_id": "kettle"}, headers=ada)
    catalog.products["mug"]["price_cents"] = 1000  # the price changed: read again, never trusted
    more = client.post("/cart/items", json={"product_id": "mug", "quantity": 1}, headers=ada).json()
    assert [(i["product_id"], i["quantity"], i["price_cents"]) for i in more["items"]] == [
        ("mug", 3, 1000),
        ("kettle", 1, 4500),
    ]
    assert more["subtotal_cents"] == more["total_cents"] == 3 * 1000 + 4500 and more["item_count"] == 4

    changed = client.put("/cart/items/kettle", json={"quantity": 2}, headers=ada)
    assert changed.status_code == 200 and changed.json()["items"][1]["quantity"] == 2
    removed = client.delete("/cart/items/mug", headers=ada)
    assert removed.status_code == 200 and [i["product_id"] for i in removed.json()["items"]] == ["kettle"]
    # Carts are per user.
    assert client.get("/cart", headers=tokens.headers(sub="bob")).json()["items"] == []


def test_more_than_in_stock_is_409(cart_shop: Any) -> None:
    client, tokens, _, inventory = cart_shop
    ada = tokens.headers(sub="ada")
    too_many = client.post("/cart/items", json={"product_id": "kettle", "quantity": 3}, headers=ada)
    assert too_many.status_code == 409
    error = too_many.json()["error"]
    assert error["code"] == "insufficient_stock"
    assert error["details"] == {"product_id": "kettle", "available": 2, "requested": 3}
    client.post("/cart/items", json={"product_id": "kettle", "quantity": 2}, headers=ada)
    # Adding counts what is already in the cart; so does changing the quantity.
    assert client.post("/cart/items", json={"product_id": "kettle"}, headers=ada).status_code == 409
    inventory.stock["kettle"] = 1
    assert client.put("/cart/items/kettle", json={"quantity": 2}, headers=ada).status_code == 409
    assert client.get("/cart", headers=ada).json()["items"][0]["quantity"] == 2  # unchanged
    over_limit = client.post("/cart/items", json={"product_id": "mug", "quantity": 99}, headers=ada)
    assert over_limit.status_code == 409


def test_unknown_products_and_items_are_404(cart_shop: Any) -> None:
    client, tokens, _, _ = cart_shop
    ada = tokens.headers(sub="ada")
    unknown = client.post("/cart/items", json={"product_id": "unicorn", "quantity": 1}, headers=ada)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "product_not_found"
    assert client.put("/cart/items/mug", json={"quantity": 1}, headers=ada).status_code == 404
    missing = client.delete("/cart/items/mug", headers=ada)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_in_cart"


@pytest.mark.parametrize(
    "body",
    [
        {"product_id": "mug", "quantity": 0},
        {"product_id": "mug", "quantity": 100},
        {"product_id": "mug", "quantity": "2"},
        {"product_id": "mug", "quantity": 1, "price_cents": 1},
        {"product_id": "", "quantity": 1},
        {"product_id": "../etc", "quantity": 1},
        {"quantity": 1},
    ],
)
def test_bad_cart_input_is_422(cart_shop: Any, body: dict[str, Any]) -> None:
    client, tokens, _, _ = cart_shop
    response = client.post("/cart/items", json=body, headers=tokens.headers())
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_bad_requests(cart_shop: Any) -> None:
    client, tokens, _, _ = cart_shop
    assert client.get("/cart").status_code == 401
    assert client.post("/cart/items", json={"product_id": "mug"}).status_code == 401
    malformed = client.post(
        "/cart/items", content=b"{", headers={**tokens.headers(), "content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert client.put("/cart/items/mug", json={"quantity": 0}, headers=tokens.headers()).status_code == 422


def test_dependencies_down_are_503_not_500(cart_shop: Any) -> None:
    client, tokens, _, inventory = cart_shop
    inventory.fail = ApiError(503, "dependency_unavailable", "inventory is unavailable")
    response = client.post("/cart/items", json={"product_id": "mug"}, headers=tokens.headers())
    assert response.status_code == 503 and response.json()["error"]["code"] == "dependency_unavailable"
