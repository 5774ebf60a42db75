"""The audit at the end of a chaos run: what the databases say, not what any counter claims.

It reads order's `orders`, payment's `payments` and product's `products` and `reservations` directly
(each service's own database on the same server) and checks the money and the stock:

- double charges: purchases (a shopper's Idempotency-Key; a retried attempt keeps it as `<key>~<order>`)
  with more than one succeeded charge;
- charges without a paid order: a succeeded charge whose order is failed, open or missing;
- paid orders lost: orders a shopper was told are paid (201 from checkout) that are not paid (or later
  refunded/shipped/delivered) in order's database, and paid orders without a succeeded charge;
- leaked reservations: stock reserved for an order that is not paid, and half-done (PENDING) claims;
- open orders: checkouts still pending/reserved/charged, or failed with an undo still to do;
- stock drift: units that are neither on the shelf nor reserved for an order, from a snapshot of
  stock + reserved units taken before the load (a conserved quantity: a reservation moves units from
  the shelf to an order, a release moves them back).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from pymongo import MongoClient

SUCCEEDED = {"paid", "shipped", "delivered", "refunded"}
OPEN = {"pending", "reserved", "charged"}


@dataclass(frozen=True)
class Snapshot:
    """Per product: units on the shelf plus units reserved (RESERVED) for orders."""

    units: dict[str, int]


@dataclass
class Audit:
    orders: int = 0
    orders_by_status: dict[str, int] = field(default_factory=dict)
    payments_by_status: dict[str, int] = field(default_factory=dict)
    double_charges: int = 0
    charges_without_paid_order: int = 0
    paid_orders_lost: int = 0
    leaked_reservations: int = 0
    open_orders: int = 0
    stock_drift: int = 0
    findings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def connect(url: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(url, serverSelectionTimeoutMS=5000, timeoutMS=30000)


def snapshot(client: MongoClient[dict[str, Any]]) -> Snapshot:
    product = client["product"]
    units: dict[str, int] = {d["_id"]: int(d["stock"]) for d in product.products.find({}, {"stock": 1})}
    for reservation in product.reservations.find({"status": "RESERVED"}):
        for item in reservation["items"]:
            units[item["product_id"]] = units.get(item["product_id"], 0) + int(item["quantity"])
    return Snapshot(units)


def open_orders(client: MongoClient[dict[str, Any]]) -> int:
    """Checkouts nobody finished yet (what the settler still has to do)."""
    return int(
        client["order"].orders.count_documents(
            {"$or": [{"status": {"$in": sorted(OPEN)}}, {"status": "failed", "undo_pending": True}]}
        )
    )


def audit(client: MongoClient[dict[str, Any]], before: Snapshot, seen_paid: set[str]) -> Audit:
    orders = {d["_id"]: d for d in client["order"].orders.find({})}
    payments = list(client["payment"].payments.find({}))
    reservations = list(client["product"].reservations.find({}))
    result = Audit(orders=len(orders))
    result.orders_by_status = dict(Counter(o["status"] for o in orders.values()))
    result.payments_by_status = dict(Counter(p["status"] for p in payments))

    charged_by_purchase: dict[tuple[str, str], list[str]] = defaultdict(list)
    payment_of_order = {p["order_id"]: p for p in payments}
    for payment in payments:
        order = orders.get(payment["order_id"])
        if payment["status"] != "succeeded":
            continue
        if order is None or order["status"] not in SUCCEEDED:
            result.charges_without_paid_order += 1
            state = "missing" if order is None else order["status"]
            result.findings.append(
                f"charge {payment['_id']} succeeded, its order {payment['order_id']} is {state}"
            )
        if order is not None:
            key = str(order["idempotency_key"]).split("~", 1)[0]
            charged_by_purchase[(order["user_id"], key)].append(payment["_id"])
    for (user, key), charges in charged_by_purchase.items():
        if len(charges) > 1:
            result.double_charges += 1
            result.findings.append(f"purchase {key} of user {user} charged {len(charges)} times: {charges}")

    for order_id in sorted(seen_paid):
        order = orders.get(order_id)
        if order is None or order["status"] not in SUCCEEDED:
            result.paid_orders_lost += 1
            state = "missing" if order is None else order["status"]
            result.findings.append(f"order {order_id} was answered paid, is now {state}")
    for order in orders.values():
        if order["status"] in SUCCEEDED:
            payment = payment_of_order.get(order["_id"])
            if payment is None or payment["status"] not in ("succeeded", "refunded"):
                result.paid_orders_lost += 1
                state = "missing" if payment is None else payment["status"]
                result.findings.append(f"order {order['_id']} is {order['status']}, its charge is {state}")
        if order["status"] in OPEN or (order["status"] == "failed" and order.get("undo_pending")):
            result.open_orders += 1
            result.findings.append(f"order {order['_id']} is still {order['status']}")

    for reservation in reservations:
        order = orders.get(reservation["_id"])
        if reservation["status"] == "PENDING":
            result.leaked_reservations += 1
            result.findings.append(f"reservation {reservation['_id']} is half done (PENDING)")
        elif reservation["status"] == "RESERVED" and (order is None or order["status"] not in SUCCEEDED):
            result.leaked_reservations += 1
            state = "missing" if order is None else order["status"]
            result.findings.append(f"stock reserved for order {reservation['_id']}, which is {state}")

    after = snapshot(client)
    for product_id in sorted(set(before.units) | set(after.units)):
        drift = after.units.get(product_id, 0) - before.units.get(product_id, 0)
        if drift:
            result.stock_drift += abs(drift)
            result.findings.append(f"{product_id}: {drift:+d} units (shelf + reserved) since the start")
    negative = list(client["product"].products.find({"stock": {"$lt": 0}}, {"stock": 1}))
    for doc in negative:
        result.stock_drift += abs(int(doc["stock"]))
        result.findings.append(f"{doc['_id']}: stock below zero ({doc['stock']}): oversold")
    return result
