"""What the frontend sends to order: the items of a cart and the checkout (`POST /cart/items`,
`POST /orders`). The frontend validates with the same models first, so a shopper sees field errors
instead of an answer order would refuse."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.address import Address
from services.contracts.card import CardIn

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"


class CartItemIn(BaseModel):
    """Units of a product to put in the cart (added to what is already there). `quantity` is a JSON
    integer: `true`, `"2"` and `2.5` are refused."""

    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=PRODUCT_ID_PATTERN, examples=["espresso-cup"])
    quantity: int = Field(1, strict=True, ge=1, le=99)


class CheckoutIn(BaseModel):
    """The body of `POST /orders` (header `Idempotency-Key`): where to ship and which card to charge."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "shipping_address": {
                        "name": "Ada Lovelace",
                        "street": "Kerkstraat 1",
                        "city": "Amsterdam",
                        "postal_code": "1017 GA",
                        "country": "NL",
                    },
                    "card": {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"},
                }
            ]
        },
    )

    shipping_address: Address
    card: CardIn
