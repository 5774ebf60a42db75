"""Request and response models of the order service."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.payment import cards  # pure card-format checks, shared with the payment service

ProductId = Field(pattern=r"^[A-Za-z0-9._-]{1,100}$", examples=["espresso-cup"])


class CartItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = ProductId
    quantity: int = Field(1, strict=True, ge=1, le=99)


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


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(None, max_length=50)
    name: str = Field(min_length=1, max_length=100, examples=["Ada Lovelace"])
    street: str = Field(min_length=1, max_length=200, examples=["Kerkstraat 1"])
    city: str = Field(min_length=1, max_length=100, examples=["Amsterdam"])
    postal_code: str = Field(min_length=1, max_length=20, examples=["1017 GA"])
    country: str = Field(pattern=r"^[A-Z]{2}$", examples=["NL"])


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shipping_address: Address
    card: cards.CardIn


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
