"""Shipping API: POST /shipping/quote (public), POST /shipments, GET /shipments/{id}, POST .../advance."""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from services.contracts import Address
from services.kit import ApiError, clock
from services.kit.db import Database
from services.kit.deps import AdminUser, AppSettings, Caller, Db
from services.kit.jwt import Principal
from services.shipping import rates, store
from services.shipping.settings import Settings

log = logging.getLogger("shipping.api")
router = APIRouter(tags=["shipping"])
Status = Literal["created", "shipped", "delivered"]


Weight = Field(strict=True, ge=1, le=30_000, description="grams; parcels up to 30 kg", examples=[1200])


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: Address
    weight_grams: int = Weight


class QuoteOut(BaseModel):
    amount_cents: int
    currency: str = "EUR"
    carrier: str
    estimated_days: int
    zone: str


class ShipmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", examples=["9f1c2e3d4b5a69788796a5b4c3d2e1f0"])
    address: Address
    weight_grams: int = Weight
    user_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="only the order service, with its own token (finishing a checkout its shopper left)",
    )


class ShipmentOut(BaseModel):
    id: str
    order_id: str
    tracking_number: str
    status: Status
    carrier: str
    address: Address
    weight_grams: int
    created_at: str
    shipped_at: str | None
    delivered_at: str | None
    estimated_delivery: str
    next_update_at: str | None = Field(
        description="when the status is planned to change next (null once delivered): when to look again"
    )


def _quote(address: Address, weight_grams: int) -> QuoteOut:
    zone = rates.zone_for(address.country)
    return QuoteOut(
        amount_cents=rates.price_cents(zone, weight_grams),
        carrier=zone.carrier,
        estimated_days=zone.estimated_days,
        zone=zone.name,
    )


def _out(doc: dict[str, Any]) -> ShipmentOut:
    """The shipment as of now: past planned times are facts, future ones are shown as an estimate."""
    moment = clock.utc_now()
    status = store.status_of(doc, moment)
    return ShipmentOut(
        id=doc["_id"],
        order_id=doc["order_id"],
        tracking_number=doc["tracking_number"],
        status=status,  # type: ignore[arg-type]
        carrier=doc["carrier"],
        address=Address.model_validate(doc["address"]),
        weight_grams=doc["weight_grams"],
        created_at=doc["created_at"],
        shipped_at=doc["shipped_at"] if status != "created" else None,
        delivered_at=doc["delivered_at"] if status == "delivered" else None,
        estimated_delivery=doc["delivered_at"],
        next_update_at={"created": doc["shipped_at"], "shipped": doc["delivered_at"]}.get(status),
    )


@router.post("/shipping/quote", response_model=QuoteOut, summary="Price a parcel (no login needed)")
async def quote(body: QuoteIn) -> QuoteOut:
    return _quote(body.address, body.weight_grams)


@router.post(
    "/shipments",
    status_code=201,
    response_model=ShipmentOut,
    summary="Create the shipment of an order (idempotent per order_id)",
    responses={409: {"description": "the order's shipment belongs to another user"}},
)
async def create_shipment(
    body: ShipmentIn, db: Db, response: Response, caller: Caller, settings: AppSettings[Settings]
) -> ShipmentOut:
    """For the shopper whose token it carries, or, with order's own token, for the `user_id` it names."""
    if caller.is_user:
        if body.user_id is not None:
            raise ApiError(403, "forbidden", "user_id is for the order service only")
        owner = caller.sub
    elif caller.is_service("order"):
        if body.user_id is None:
            raise ApiError(422, "validation_error", "the order service must name the user_id it ships for")
        owner = body.user_id
    else:
        raise ApiError(403, "forbidden", f"{caller.sub} may not create shipments")
    created = clock.utc_now()
    shipped_at, delivered_at = store.planned(
        created, settings.ship_after_seconds, settings.deliver_after_seconds
    )
    quote_ = _quote(body.address, body.weight_grams)
    doc = {
        "_id": uuid.uuid4().hex,
        "order_id": body.order_id,
        "user_id": owner,
        "tracking_number": f"SP{secrets.randbelow(10**10):010d}NL",
        "carrier": quote_.carrier,
        "address": body.address.model_dump(),
        "weight_grams": body.weight_grams,
        "created_at": clock.iso(created),
        "shipped_at": shipped_at,
        "delivered_at": delivered_at,
    }
    if await store.insert(db, doc):
        log.info("shipment %s for order %s (%s)", doc["_id"], body.order_id, doc["tracking_number"])
        return _out(doc)
    existing = await store.by_order(db, body.order_id)
    if existing is None or existing["user_id"] != owner:
        raise ApiError(409, "order_id_conflict", "this order id belongs to another shipment")
    response.headers["Idempotent-Replayed"] = "true"
    return _out(existing)


async def _visible(db: Database, shipment_id: str, caller: Principal) -> dict[str, Any]:
    """The shipment, for its owner, an admin, or the order service (which follows every shipment)."""
    doc = await store.get(db, shipment_id)
    allowed = caller.is_service("order") or (caller.is_user and caller.may_see(doc["user_id"] if doc else ""))
    if doc is None or not allowed:
        raise ApiError(404, "shipment_not_found", "no such shipment")
    return doc


@router.get(
    "/shipments/{shipment_id}",
    response_model=ShipmentOut,
    summary="A shipment (its owner, an admin, or the order service with its own token)",
    responses={404: {"description": "shipment_not_found"}},
)
async def get_shipment(shipment_id: str, db: Db, caller: Caller) -> ShipmentOut:
    return _out(await _visible(db, shipment_id, caller))


@router.post(
    "/shipments/{shipment_id}/advance",
    response_model=ShipmentOut,
    summary="Move a shipment to its next status now (admin only)",
    responses={404: {"description": "shipment_not_found"}, 409: {"description": "already_delivered"}},
)
async def advance(shipment_id: str, db: Db, admin: AdminUser) -> ShipmentOut:
    for _ in range(5):
        doc = await _visible(db, shipment_id, admin)
        if store.status_of(doc, clock.utc_now()) == "delivered":
            raise ApiError(409, "already_delivered", "the shipment is already delivered")
        moved = await store.advance(db, doc)
        if moved is not None:
            log.info("shipment %s advanced by %s", shipment_id, admin.email)
            return _out(moved)
    raise ApiError(409, "conflict", "the shipment changed meanwhile; try again")
