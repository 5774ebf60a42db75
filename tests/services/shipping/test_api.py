"""shipping service: quotes by zone and weight, idempotent shipments, status by time or admin advance."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.kit.testing import TokenFactory
from services.shipping.settings import Settings
from tests.services.helpers import PLANTED_ADDRESS_VALUES, PLANTED_IDS, assert_refused_field, planted_address
from tests.services.shipping.helpers import shipping_app

HOME = {
    "name": "Ada",
    "street": "Kerkstraat 1",
    "city": "Amsterdam",
    "postal_code": "1017 GA",
    "country": "NL",
}


def address(country: str) -> dict[str, str]:
    return {**HOME, "country": country}


@pytest.mark.parametrize(
    ("country", "grams", "cents", "carrier", "days"),
    [
        ("NL", 1, 595, "ShopPost", 1),
        ("NL", 1000, 595, "ShopPost", 1),
        ("NL", 1001, 695, "ShopPost", 1),
        ("DE", 2500, 995 + 3 * 250, "ShopPost Europe", 3),
        ("US", 30_000, 1995 + 30 * 600, "ShopPost International", 7),
    ],
)
def test_quote_by_zone_and_weight(
    shop: tuple[TestClient, TokenFactory], country: str, grams: int, cents: int, carrier: str, days: int
) -> None:
    client, _ = shop
    response = client.post("/shipping/quote", json={"address": address(country), "weight_grams": grams})
    assert response.status_code == 200  # no token needed
    assert response.headers["x-served-by"] == "shipping/v1"
    quote = response.json()
    assert (quote["amount_cents"], quote["carrier"], quote["estimated_days"]) == (cents, carrier, days)


@pytest.mark.parametrize(
    "body",
    [
        {"address": HOME, "weight_grams": 0},
        {"address": HOME, "weight_grams": 30_001},
        {"address": HOME, "weight_grams": "100"},
        {"address": address("nl"), "weight_grams": 100},
        {"address": {**HOME, "street": ""}, "weight_grams": 100},
        {"address": {k: v for k, v in HOME.items() if k != "city"}, "weight_grams": 100},
        {"address": {**HOME, "floor": 3}, "weight_grams": 100},
        {"weight_grams": 100},
    ],
)
def test_quote_bad_input_is_422(shop: tuple[TestClient, TokenFactory], body: dict[str, Any]) -> None:
    client, _ = shop
    response = client.post("/shipping/quote", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_malformed_json_is_400(shop: tuple[TestClient, TokenFactory]) -> None:
    client, _ = shop
    response = client.post("/shipping/quote", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_shipment_is_idempotent_per_order(shop: tuple[TestClient, TokenFactory]) -> None:
    client, tokens = shop
    body = {"order_id": "order-1", "address": HOME, "weight_grams": 1200}
    first = client.post("/shipments", json=body, headers=tokens.headers(sub="u1"))
    assert first.status_code == 201
    shipment = first.json()
    assert shipment["status"] == "created" and shipment["order_id"] == "order-1"
    assert shipment["tracking_number"].startswith("SP") and len(shipment["tracking_number"]) == 14
    assert shipment["shipped_at"] is None and shipment["estimated_delivery"]

    again = client.post("/shipments", json=body, headers=tokens.headers(sub="u1"))
    assert again.status_code == 201 and again.json()["id"] == shipment["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert client.post("/shipments", json=body, headers=tokens.headers(sub="u2")).status_code == 409

    assert client.get(f"/shipments/{shipment['id']}", headers=tokens.headers(sub="u1")).json() == shipment
    assert client.get(f"/shipments/{shipment['id']}", headers=tokens.headers(sub="u2")).status_code == 404
    admin = tokens.headers(sub="boss", groups=["admin"])
    assert client.get(f"/shipments/{shipment['id']}", headers=admin).status_code == 200
    # The order service follows every shipment with its own token; other services may not.
    url = f"/shipments/{shipment['id']}"
    assert client.get(url, headers=tokens.service_headers("order")).status_code == 200
    assert client.get(url, headers=tokens.service_headers("user")).status_code == 404


def test_shipments_need_a_token_and_valid_input(shop: tuple[TestClient, TokenFactory]) -> None:
    client, tokens = shop
    body = {"order_id": "order-1", "address": HOME, "weight_grams": 1200}
    assert client.post("/shipments", json=body).status_code == 401
    assert client.get("/shipments/x").status_code == 401
    assert client.get("/shipments/x", headers=tokens.headers()).status_code == 404
    bad = client.post("/shipments", json={**body, "order_id": "no spaces"}, headers=tokens.headers())
    assert bad.status_code == 422


def test_status_moves_with_time() -> None:
    app, tokens = shipping_app(Settings(ship_after_seconds=0.3, deliver_after_seconds=0.6))
    with TestClient(app) as client:
        headers = tokens.headers(sub="u1")
        body = {"order_id": "o1", "address": HOME, "weight_grams": 10}
        shipment = client.post("/shipments", json=body, headers=headers).json()
        assert shipment["status"] == "created"
        time.sleep(0.35)
        shipped = client.get(f"/shipments/{shipment['id']}", headers=headers).json()
        assert shipped["status"] == "shipped" and shipped["shipped_at"] and shipped["delivered_at"] is None
        assert shipment["next_update_at"] == shipped["shipped_at"]  # announced, then it happened
        assert shipped["next_update_at"] == shipped["estimated_delivery"]
        time.sleep(0.3)
        delivered = client.get(f"/shipments/{shipment['id']}", headers=headers).json()
        assert delivered["status"] == "delivered" and delivered["delivered_at"]
        assert delivered["next_update_at"] is None


def test_admin_advances_one_step_at_a_time(shop: tuple[TestClient, TokenFactory]) -> None:
    client, tokens = shop
    body = {"order_id": "o1", "address": HOME, "weight_grams": 10}
    shipment = client.post("/shipments", json=body, headers=tokens.headers(sub="u1")).json()
    url = f"/shipments/{shipment['id']}/advance"
    assert client.post(url, headers=tokens.headers(sub="u1")).status_code == 403
    assert client.post(url).status_code == 401
    admin = tokens.headers(sub="boss", groups=["customer", "admin"])
    assert client.post("/shipments/nope/advance", headers=admin).status_code == 404
    assert client.post(url, headers=admin).json()["status"] == "shipped"
    assert (
        client.get(f"/shipments/{shipment['id']}", headers=tokens.headers(sub="u1")).json()["status"]
        == "shipped"
    )
    assert client.post(url, headers=admin).json()["status"] == "delivered"
    done = client.post(url, headers=admin)
    assert done.status_code == 409 and done.json()["error"]["code"] == "already_delivered"


def test_deliver_before_ship_is_a_settings_error() -> None:
    with pytest.raises(ValueError):
        Settings(ship_after_seconds=10, deliver_after_seconds=5)


@pytest.mark.parametrize(("field", "value"), PLANTED_ADDRESS_VALUES, ids=PLANTED_IDS)
def test_planted_address_values_are_refused_as_everywhere(
    shop: tuple[TestClient, TokenFactory], field: str, value: str
) -> None:
    """The one Address rule (services.contracts) for quotes and shipments: a 422 naming the field."""
    client, tokens = shop
    address = planted_address(field, value, HOME)
    quote = client.post("/shipping/quote", json={"address": address, "weight_grams": 100})
    assert_refused_field(quote, field)
    body = {"order_id": "o-planted", "address": address, "weight_grams": 100}
    shipment = client.post("/shipments", json=body, headers=tokens.headers(sub="ada"))
    assert_refused_field(shipment, field)
