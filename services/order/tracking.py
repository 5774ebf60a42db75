"""Following shipments: a paid order becomes `shipped`, then `delivered`, without anyone looking at it.

How shipping's progress reaches the order and the shopper: order polls, as itself. Shipping decides the
status by time and says when it will change next (`next_update_at`); each order keeps `track_at`, the
moment to look again (that moment, but at most TRACK_INTERVAL_SECONDS ahead, so an admin's `advance` at
shipping is seen too). A background loop in every order process claims the orders that are due (a
conditional update: one replica wins each), asks shipping with order's own token, records the steps with
the times shipping recorded them (not the time order noticed), and notifies the shopper once per step
(`shipment_update` when shipped, `order_delivered` when delivered; notification dedupes per order and
kind). Opening the order page does the same at once (`follow`). Every call has the kit's timeouts; a
shipping or notification outage only delays the next look.

Why polling from order rather than events from shipping: order owns the order's status and already
calls shipping, so no new call edge (and no new mesh policy) is needed, and a lost event cannot leave an
order stuck: the next look repairs it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from services.kit import ApiError, clock
from services.kit.background import repeat
from services.kit.db import Database
from services.order import store
from services.order.clients import Neighbours
from services.order.settings import Settings

log = logging.getLogger("order.tracking")
Doc = dict[str, Any]
TRACKED = ["paid", "shipped"]
# Shipment status -> (order status, the shipment field with the time it happened), in the order they happen.
STEPS = {
    "shipped": [("shipped", "shipped_at")],
    "delivered": [("shipped", "shipped_at"), ("delivered", "delivered_at")],
}
NOTICES = {
    "shipped": (
        "shipment_update",
        "Your order has shipped",
        "Order {short} is on its way. Tracking number: {tn}.",
    ),
    "delivered": ("order_delivered", "Your order is delivered", "Order {short} was delivered. Enjoy!"),
}


def next_look(settings: Settings, next_update_at: str | None) -> str | None:
    """When to ask shipping again: its announced change, but within TRACK_INTERVAL_SECONDS, and never sooner
    than a second from now (clocks of two services may differ a little). None when nothing will change."""
    if next_update_at is None:
        return None
    now = clock.utc_now()
    latest = clock.iso(now + timedelta(seconds=settings.track_interval_seconds))
    earliest = clock.iso(now + timedelta(seconds=1))
    return max(earliest, min(next_update_at, latest))


async def follow(db: Database, settings: Settings, neighbours: Neighbours, order: Doc) -> Doc:
    """Bring a paid or shipped order up to date with its shipment; the order as it is now."""
    if order["status"] not in TRACKED or not order.get("shipment_id"):
        return order
    try:
        shipment = await neighbours.shipment_as_order(order["shipment_id"])
    except ApiError as exc:
        log.warning("order %s: shipment status unavailable: %s", order["_id"], exc.code)
        return order  # show what we know; the tracker looks again later
    done = {h["status"] for h in order["status_history"]}
    steps = [
        (s, shipment.get(field)) for s, field in STEPS.get(str(shipment.get("status")), []) if s not in done
    ]
    track_at = next_look(settings, shipment.get("next_update_at"))
    if not steps:
        return await store.record(db, order["_id"], {"track_at": track_at}) or order
    entries = [{"status": status, "at": at or clock.now_iso()} for status, at in steps]
    final = steps[-1][0]
    updated = await store.record(
        db,
        order["_id"],
        {"status": final, "track_at": track_at},
        *entries,
        when_status=[order["status"]],
    )
    if updated is None:  # another request or replica moved it first (and notified)
        return await store.get_order(db, order["_id"]) or order
    for status, _ in steps:
        kind, subject, text = NOTICES[status]
        body = text.format(short=order["_id"][:8], tn=order.get("tracking_number"))
        try:
            await neighbours.notify_user(updated, kind, subject, body)
        except ApiError as exc:
            log.warning("%s notification for order %s not sent: %s", status, order["_id"], exc.code)
    log.info("order %s %s (shipment %s)", order["_id"], final, order["shipment_id"])
    return updated


async def track_due(app: FastAPI, limit: int = 50) -> int:
    """Follow the orders whose time to look has come (at most `limit`); how many were looked at."""
    settings: Settings = app.state.settings
    looked = 0
    while looked < limit:
        lease = clock.now_iso(settings.track_interval_seconds)  # if this process dies, another looks later
        order = await store.claim_due(app.state.db, TRACKED, clock.now_iso(), lease)
        if order is None:
            break
        await follow(app.state.db, settings, Neighbours.of_state(app.state), order)
        looked += 1
    return looked


async def run(app: FastAPI) -> None:
    """The background loop: look for due orders every TRACK_POLL_SECONDS until cancelled."""
    settings: Settings = app.state.settings
    await repeat(
        lambda: track_due(app),
        every_seconds=settings.track_poll_seconds,
        what="shipment tracking round",
        log=log,
    )
