"""Order's own request and response models. The bodies other services send (`CartItemIn`, `CheckoutIn`)
and the `Address` are the shared contracts in `services.contracts`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.contracts import Address


class QuantityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(strict=True, ge=1, le=99, examples=[2])


class CartItemOut(BaseModel):
    product_id: str
    name: str
    price_cents: int
    currency: str
    quantity: int
    line_total_cents: int
    image: str | None = None


class CartOut(BaseModel):
    items: list[CartItemOut]
    item_count: int
    subtotal_cents: int
    total_cents: int = Field(description="the items' total; shipping is added at checkout")
    currency: str


class HistoryEntry(BaseModel):
    status: str
    at: str
    reason: str | None = None


class OrderItem(BaseModel):
    product_id: str
    name: str
    price_cents: int
    quantity: int
    line_total_cents: int


class OrderOut(BaseModel):
    id: str
    status: str = Field(
        description="pending, reserved, charged, paid, shipped, delivered, refunded or failed"
    )
    status_history: list[HistoryEntry]
    items: list[OrderItem]
    currency: str
    subtotal_cents: int
    shipping_cents: int
    total_cents: int = Field(description="what is charged: subtotal plus shipping")
    payment_id: str | None
    shipment_id: str | None
    tracking_number: str | None
    shipping_address: Address
    failure_reason: str | None = None
    created_at: str
    updated_at: str


class OrderList(BaseModel):
    items: list[OrderOut]


def order_out(doc: dict[str, Any]) -> OrderOut:
    return OrderOut.model_validate({k: v for k, v in doc.items() if k in OrderOut.model_fields})
