"""Cart API: prices and names come from the product service, never from the client."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from services.contracts import CartItemIn
from services.kit import ApiError
from services.kit.deps import CurrentUser, Db
from services.order import store
from services.order.clients import Neighbours, NeighboursDep
from services.order.inventory_client import InventoryClient, InventoryDep
from services.order.models import CartItemOut, CartOut, QuantityIn

router = APIRouter(tags=["cart"])
ProductPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,100}$")]


def cart_out(cart: dict[str, Any]) -> CartOut:
    items = [
        CartItemOut(
            **{k: item.get(k) for k in ("product_id", "name", "price_cents", "currency", "image")},
            quantity=item["quantity"],
            line_total_cents=item["price_cents"] * item["quantity"],
        )
        for item in cart["items"]
    ]
    return CartOut(
        items=items,
        item_count=sum(i.quantity for i in items),
        subtotal_cents=sum(i.line_total_cents for i in items),
        total_cents=sum(i.line_total_cents for i in items),
        currency=items[0].currency if items else "EUR",
    )


async def _checked_item(
    neighbours: Neighbours, inventory: InventoryClient, product_id: str, quantity: int
) -> dict[str, Any]:
    """The product's current name and price, after checking `quantity` units are available."""
    product = await neighbours.product(product_id)
    levels = await inventory.get_stock([product_id])
    available = int(levels.get(product_id, 0))
    if quantity > available:
        raise ApiError(
            409,
            "insufficient_stock",
            f"only {available} of {product.get('name', product_id)} available",
            {"product_id": product_id, "available": available, "requested": quantity},
        )
    return {
        "product_id": product_id,
        "name": str(product["name"]),
        "price_cents": int(product["price_cents"]),
        "currency": str(product.get("currency", "EUR")),
        "image": product.get("image"),
        "quantity": quantity,
    }


def _find(items: list[dict[str, Any]], product_id: str) -> dict[str, Any] | None:
    return next((item for item in items if item["product_id"] == product_id), None)


@router.get("/cart", response_model=CartOut, summary="The caller's cart")
async def get_cart(db: Db, user: CurrentUser) -> CartOut:
    return cart_out(await store.get_cart(db, user.sub))


@router.post(
    "/cart/items",
    response_model=CartOut,
    summary="Add units of a product (adds to what is already in the cart)",
    responses={404: {"description": "unknown product"}, 409: {"description": "insufficient_stock"}},
)
async def add_item(
    body: CartItemIn, db: Db, neighbours: NeighboursDep, inventory: InventoryDep, user: CurrentUser
) -> CartOut:
    current = _find((await store.get_cart(db, user.sub))["items"], body.product_id)
    wanted = body.quantity + (current["quantity"] if current else 0)
    if wanted > 99:
        raise ApiError(409, "quantity_limit", "at most 99 units of a product per order")
    fresh = await _checked_item(neighbours, inventory, body.product_id, wanted)

    def change(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        existing = _find(items, body.product_id)
        if existing is None:
            return [*items, {**fresh, "quantity": body.quantity}]
        existing.update({**fresh, "quantity": min(99, existing["quantity"] + body.quantity)})
        return items

    return cart_out(await store.update_cart(db, user.sub, change))


@router.put(
    "/cart/items/{product_id}",
    response_model=CartOut,
    summary="Set the quantity of a product in the cart",
    responses={404: {"description": "not in the cart"}, 409: {"description": "insufficient_stock"}},
)
async def set_quantity(
    product_id: ProductPath,
    body: QuantityIn,
    db: Db,
    neighbours: NeighboursDep,
    inventory: InventoryDep,
    user: CurrentUser,
) -> CartOut:
    if _find((await store.get_cart(db, user.sub))["items"], product_id) is None:
        raise ApiError(404, "not_in_cart", f"{product_id!r} is not in the cart")
    fresh = await _checked_item(neighbours, inventory, product_id, body.quantity)

    def change(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        existing = _find(items, product_id)
        if existing is None:
            raise ApiError(404, "not_in_cart", f"{product_id!r} is not in the cart")
        existing.update(fresh)
        return items

    return cart_out(await store.update_cart(db, user.sub, change))


@router.delete(
    "/cart/items/{product_id}",
    response_model=CartOut,
    summary="Remove a product from the cart",
    responses={404: {"description": "not in the cart"}},
)
async def remove_item(product_id: ProductPath, db: Db, user: CurrentUser) -> CartOut:
    def change(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if _find(items, product_id) is None:
            raise ApiError(404, "not_in_cart", f"{product_id!r} is not in the cart")
        return [item for item in items if item["product_id"] != product_id]

    return cart_out(await store.update_cart(db, user.sub, change))
