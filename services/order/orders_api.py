"""Orders API: POST /orders (Idempotency-Key required), GET /orders, GET /orders/{id}."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.contracts import CheckoutIn
from services.kit import ApiError
from services.kit.deps import AdminUser, AppSettings, CurrentUser, Db
from services.order import store, tracking
from services.order.checkout import REFUNDABLE, CheckoutDep, place_order
from services.order.clients import NeighboursDep
from services.order.models import OrderList, OrderOut, order_out
from services.order.settings import Settings

log = logging.getLogger("order.api")
router = APIRouter(tags=["orders"])
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    summary="Check out the cart (header Idempotency-Key required; the same key returns the same order)",
    responses={
        400: {"description": "idempotency_key_required / invalid_idempotency_key"},
        402: {"description": "card_declined / insufficient_funds (details.order_id is the failed order)"},
        409: {"description": "cart_empty, insufficient_stock, idempotency_key_reused, checkout_in_progress"},
    },
)
async def create_order(
    body: CheckoutIn,
    checkout: CheckoutDep,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    if not idempotency_key:
        raise ApiError(400, "idempotency_key_required", "send an Idempotency-Key header (e.g. a UUID)")
    if not _KEY.match(idempotency_key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1-128 of A-Z a-z 0-9 . _ : -")
    order, replayed = await place_order(checkout, user, idempotency_key, body)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(order_out(order).model_dump(mode="json"), status_code=201, headers=headers)


@router.get("/orders", response_model=OrderList, summary="The caller's orders, newest first")
async def list_orders(
    db: Db, user: CurrentUser, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> OrderList:
    docs = await store.list_orders(db, user.sub, limit)
    return OrderList(items=[order_out(doc) for doc in docs])


@router.get(
    "/orders/{order_id}",
    response_model=OrderOut,
    summary="One of the caller's orders, its shipment status brought up to date first",
    responses={404: {"description": "order_not_found"}},
)
async def get_order(
    order_id: str, db: Db, settings: AppSettings[Settings], neighbours: NeighboursDep, user: CurrentUser
) -> OrderOut:
    doc = await store.get_order(db, order_id)
    if doc is None or doc["user_id"] != user.sub:
        raise ApiError(404, "order_not_found", "no such order")
    return order_out(await tracking.follow(db, settings, neighbours, doc))


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, examples=["damaged in transit"])


@router.post(
    "/orders/{order_id}/refund",
    response_model=OrderOut,
    summary="Refund a paid order (admin only; refunding twice returns the refunded order)",
    responses={
        404: {"description": "order_not_found"},
        409: {"description": "not_refundable: the order was never paid (or failed)"},
    },
)
async def refund_order(
    order_id: str, body: RefundIn, db: Db, neighbours: NeighboursDep, admin: AdminUser
) -> OrderOut:
    """The only way to refund: order asks payment with its own identity, so the order records every refund
    (status `refunded`, the admin and reason in the history) and stops following the shipment. The stock is
    not returned: the goods have left or are leaving the warehouse (a return is another process)."""
    doc = await store.get_order(db, order_id)
    if doc is None:
        raise ApiError(404, "order_not_found", "no such order")
    if doc["status"] == "refunded":
        return order_out(doc)
    if doc["status"] not in REFUNDABLE or not doc.get("payment_id"):
        raise ApiError(409, "not_refundable", f"a {doc['status']} order cannot be refunded")
    await neighbours.refund(doc["payment_id"])  # idempotent at payment
    entry = store.entry("refunded", f"by {admin.email}: {body.reason}")
    updated = await store.record(db, order_id, {"status": "refunded"}, entry, when_status=list(REFUNDABLE))
    if updated is None:  # refunded by a concurrent request meanwhile
        return order_out(await store.get_order(db, order_id) or doc)
    log.info("order %s refunded by %s", order_id, admin.email)
    total = f"{updated['total_cents'] / 100:.2f} {updated['currency']}"
    try:
        message = f"We refunded {total} for order {order_id[:8]}."
        await neighbours.notify_user(updated, "order_refunded", "Your order is refunded", message)
    except ApiError as exc:
        log.warning("refund notification for order %s not sent: %s", order_id, exc.code)
    return order_out(updated)
