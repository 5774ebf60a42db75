"""Order's clients of the services it calls (`Neighbours`): product (REST), payment, shipping, notification.
The gRPC Inventory client is `inventory_client.py`.

All go through `app.state.http` (timeouts, forwarded routing headers, the caller's token). What order does on
its own behalf (refunds, payment lookups) carries order's own token instead (`ServiceIdentity`)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import Depends, Request
from starlette.datastructures import State

from services.kit import ApiError
from services.kit.deps import app_state
from services.kit.http import ServiceClient
from services.kit.service_identity import ServiceIdentity
from services.order.settings import Settings

Json = dict[str, Any]


def error_of(response: httpx.Response, dependency: str) -> ApiError:
    """A neighbour's error answer as an ApiError: its code kept, 5xx reported as a dependency failure."""
    code, message, details = f"{dependency}_error", f"{dependency} answered {response.status_code}", None
    try:
        body = response.json()["error"]
        code, message, details = str(body["code"]), str(body.get("message", message)), body.get("details")
    except (ValueError, KeyError, TypeError):
        pass
    status = response.status_code
    if status >= 500:
        status = status if status in (503, 504) else 502
    return ApiError(status, code, message, details)


def _json(response: httpx.Response, dependency: str) -> Json:
    if not response.is_success:
        raise error_of(response, dependency)
    try:
        data = response.json()
    except ValueError as exc:
        raise ApiError(502, f"{dependency}_error", f"{dependency} sent a body that is not JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(502, f"{dependency}_error", f"{dependency} sent an unexpected body")
    return data


class Neighbours:
    def __init__(
        self, http: ServiceClient, settings: Settings, identity: ServiceIdentity | None = None
    ) -> None:
        self.http = http
        self.settings = settings
        self.identity = identity

    @classmethod
    def of_state(cls, state: State) -> Neighbours:
        """The clients as `build_app` set them up (its ServiceClient, settings and order's identity)."""
        return cls(state.http, state.settings, getattr(state, "identity", None))

    async def _as_order(self) -> dict[str, str]:
        """Order's own token, for calls payment answers to the order service only."""
        if self.identity is None:
            raise ApiError(503, "service_identity_unavailable", "order's identity is not set up")
        return await self.identity.authorization()

    async def product(self, product_id: str) -> Json:
        url = f"{self.settings.product_url}/products/{quote(product_id, safe='')}"
        response = await self.http.get(url)
        if response.status_code == 404:
            raise ApiError(404, "product_not_found", f"no product {product_id!r}")
        return _json(response, "product")

    async def quote(self, address: Json, weight_grams: int) -> Json:
        url = f"{self.settings.shipping_url}/shipping/quote"
        return _json(
            await self.http.post(url, json={"address": address, "weight_grams": weight_grams}), "shipping"
        )

    async def charge(self, body: Json) -> httpx.Response:
        """The raw answer: the checkout tells declines (402) from failures."""
        return await self.http.post(f"{self.settings.payment_url}/payments", json=body)

    async def refund(self, payment_id: str) -> Json:
        """Refund as the order service (payment refuses shoppers' and admins' tokens here)."""
        url = f"{self.settings.payment_url}/payments/{quote(payment_id, safe='')}/refund"
        return _json(await self.http.post(url, headers=await self._as_order()), "payment")

    async def payment_of_order(self, order_id: str) -> Json | None:
        """Payment's record of this order's charge (any status), None when it never recorded one."""
        url = f"{self.settings.payment_url}/payments/by-order/{quote(order_id, safe='')}"
        response = await self.http.get(url, headers=await self._as_order())
        if response.status_code == 404:
            return None
        return _json(response, "payment")

    async def cancel_payment_of_order(self, order_id: str) -> Json:
        """Charge-or-cancel at payment, as the order service: the order's payment if a charge happened
        (`succeeded`, `declined`, `refunded`), else `canceled`, after which no charge for the order can
        succeed. 409 `payment_in_progress` (an ApiError) while a charge is being processed."""
        url = f"{self.settings.payment_url}/payments/by-order/{quote(order_id, safe='')}/cancel"
        return _json(await self.http.post(url, headers=await self._as_order()), "payment")

    async def create_shipment(
        self, order_id: str, address: Json, weight_grams: int, for_user: str | None = None
    ) -> Json:
        """The order's shipment, for the shopper whose token this request carries, or (`for_user`) as the
        order service for that user: the settler finishes checkouts with no shopper online."""
        body = {"order_id": order_id, "address": address, "weight_grams": weight_grams}
        headers = None
        if for_user is not None:
            body["user_id"] = for_user
            headers = await self._as_order()
        url = f"{self.settings.shipping_url}/shipments"
        return _json(await self.http.post(url, json=body, headers=headers), "shipping")

    async def shipment_as_order(self, shipment_id: str) -> Json:
        """The shipment's status, asked as the order service (the tracker has no shopper's token)."""
        url = f"{self.settings.shipping_url}/shipments/{quote(shipment_id, safe='')}"
        return _json(await self.http.get(url, headers=await self._as_order()), "shipping")

    async def notify(self, kind: str, subject: str, body: str, order_id: str) -> Json:
        """A notification for the shopper whose token this request carries."""
        payload = {"kind": kind, "subject": subject, "body": body, "order_id": order_id}
        url = f"{self.settings.notification_url}/notifications"
        return _json(await self.http.post(url, json=payload), "notification")

    async def notify_user(self, order: Json, kind: str, subject: str, body: str) -> Json:
        """A notification for the order's shopper, sent as the order service (no shopper token at hand)."""
        payload = {
            "kind": kind,
            "subject": subject,
            "body": body,
            "order_id": order["_id"],
            "user_id": order["user_id"],
            "recipient": order.get("user_email") or None,
        }
        url = f"{self.settings.notification_url}/notifications"
        return _json(await self.http.post(url, json=payload, headers=await self._as_order()), "notification")


async def neighbours_for_request(request: Request) -> Neighbours:
    return Neighbours.of_state(app_state(request))


NeighboursDep = Annotated[Neighbours, Depends(neighbours_for_request)]
