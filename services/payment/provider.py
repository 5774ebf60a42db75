"""External-provider mode: POST {PROVIDER_URL}/v1/charges (the mesh egress lab's stand-in answers this)."""

from __future__ import annotations

import logging
from typing import Any

from services.kit import ApiError
from services.kit.http import ServiceClient
from services.payment.cards import Outcome

log = logging.getLogger("payment.provider")


async def charge(
    http: ServiceClient, base_url: str, order_id: str, amount_cents: int, currency: str
) -> Outcome:
    """Charge through the provider; its errors become 502 (bad answer, unreachable) or 504 (timeout)."""
    url = f"{base_url.rstrip('/')}/v1/charges"
    body = {"amount_cents": amount_cents, "currency": currency, "reference": order_id}
    try:
        # forward=False: the shopper's token and cookies never leave the shop
        response = await http.post(url, json=body, headers={"Idempotency-Key": order_id}, forward=False)
    except ApiError as exc:
        if exc.status == 504:
            raise ApiError(504, "provider_timeout", "payment provider did not answer in time") from exc
        raise ApiError(502, "provider_unavailable", "payment provider is unreachable") from exc
    if not response.is_success:
        log.warning("provider answered %s for order %s", response.status_code, order_id)
        raise ApiError(502, "provider_error", f"payment provider answered {response.status_code}")
    try:
        data: Any = response.json()
        status, charge_id = data["status"], str(data["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(502, "provider_bad_response", "payment provider sent an unexpected body") from exc
    if status == "succeeded":
        return Outcome(succeeded=True, provider_charge_id=charge_id)
    if status == "declined":
        return Outcome(succeeded=False, decline_code="card_declined", provider_charge_id=charge_id)
    raise ApiError(502, "provider_bad_response", f"payment provider sent status {status!r}")
