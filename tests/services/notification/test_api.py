"""notification service: the outbox, idempotent per (user, kind, order_id), listed per caller."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.kit.testing import TokenFactory

CONFIRMATION = {"kind": "order_confirmation", "subject": "Confirmed", "body": "Thanks!", "order_id": "o1"}


def test_notifications_are_stored_and_listed_newest_first(shop: tuple[TestClient, TokenFactory]) -> None:
    client, tokens = shop
    ada = tokens.headers(sub="ada", email="ada@example.com")
    first = client.post("/notifications", json=CONFIRMATION, headers=ada)
    assert first.status_code == 201
    assert first.headers["x-served-by"] == "notification/v1"
    stored = first.json()
    assert stored["recipient"] == "ada@example.com" and stored["status"] == "queued"
    second = client.post(
        "/notifications",
        json={"kind": "shipment_update", "subject": "Shipped", "body": "On its way", "order_id": "o1"},
        headers=ada,
    )
    assert second.status_code == 201

    listed = client.get("/notifications", headers=ada)
    assert listed.status_code == 200
    assert [n["kind"] for n in listed.json()["items"]] == ["shipment_update", "order_confirmation"]
    assert client.get("/notifications?limit=1", headers=ada).json()["items"][0]["id"] == second.json()["id"]
    assert client.get("/notifications", headers=tokens.headers(sub="bob")).json() == {"items": []}


def test_same_user_kind_and_order_is_stored_once(shop: tuple[TestClient, TokenFactory]) -> None:
    client, tokens = shop
    ada = tokens.headers(sub="ada")
    first = client.post("/notifications", json=CONFIRMATION, headers=ada).json()
    again = client.post("/notifications", json={**CONFIRMATION, "body": "other text"}, headers=ada)
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(client.get("/notifications", headers=ada).json()["items"]) == 1
    # Another user, another order or no order at all is a new notification.
    assert (
        client.post("/notifications", json=CONFIRMATION, headers=tokens.headers(sub="bob")).json()["id"]
        != first["id"]
    )
    assert (
        client.post("/notifications", json={**CONFIRMATION, "order_id": "o2"}, headers=ada).json()["id"]
        != first["id"]
    )
    general = {"kind": "general", "subject": "Hi", "body": "Welcome"}
    ids = {client.post("/notifications", json=general, headers=ada).json()["id"] for _ in range(2)}
    assert len(ids) == 2


@pytest.mark.parametrize(
    "body",
    [
        {**CONFIRMATION, "kind": "spam"},
        {**CONFIRMATION, "subject": ""},
        {**CONFIRMATION, "body": "x" * 5001},
        {**CONFIRMATION, "order_id": "bad id"},
        {"kind": "general", "subject": "Hi"},
    ],
)
def test_bad_input_is_422(shop: tuple[TestClient, TokenFactory], body: dict[str, Any]) -> None:
    client, tokens = shop
    response = client.post("/notifications", json=body, headers=tokens.headers())
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_token_required_and_bad_requests(shop: tuple[TestClient, TokenFactory]) -> None:
    client, tokens = shop
    assert client.get("/notifications").status_code == 401
    assert client.post("/notifications", json=CONFIRMATION).status_code == 401
    expired = tokens.headers(expires_in=-60)
    assert client.get("/notifications", headers=expired).status_code == 401
    assert client.get("/notifications?limit=0", headers=tokens.headers()).status_code == 422
    malformed = client.post(
        "/notifications", content=b"[", headers={**tokens.headers(), "content-type": "application/json"}
    )
    assert malformed.status_code == 400
    too_big = client.post(
        "/notifications", json={**CONFIRMATION, "body": "x" * 70_000}, headers=tokens.headers()
    )
    assert too_big.status_code == 413


def test_the_order_service_notifies_a_user_with_its_own_token(shop: tuple[TestClient, TokenFactory]) -> None:
    """Shipment progress and refunds happen with no shopper online: order names the user instead."""
    client, tokens = shop
    delivered = {"kind": "order_delivered", "subject": "Delivered", "body": "Enjoy", "order_id": "o1"}
    for_ada = {**delivered, "user_id": "ada", "recipient": "ada@example.com"}
    sent = client.post("/notifications", json=for_ada, headers=tokens.service_headers("order"))
    assert sent.status_code == 201, sent.text
    assert sent.json()["recipient"] == "ada@example.com"
    [listed] = client.get("/notifications", headers=tokens.headers(sub="ada")).json()["items"]
    assert listed["kind"] == "order_delivered" and listed["id"] == sent.json()["id"]

    # A shopper cannot write into someone else's outbox, nor can another service, nor order without a user.
    as_bob = client.post("/notifications", json=for_ada, headers=tokens.headers(sub="bob"))
    assert as_bob.status_code == 403
    as_shipping = client.post("/notifications", json=for_ada, headers=tokens.service_headers("shipping"))
    assert as_shipping.status_code == 403
    nobody = client.post("/notifications", json=delivered, headers=tokens.service_headers("order"))
    assert nobody.status_code == 422
    assert client.get("/notifications", headers=tokens.service_headers("order")).status_code == 403
    assert client.get("/notifications", headers=tokens.headers(sub="bob")).json() == {"items": []}
