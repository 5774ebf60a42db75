"""Notification API: POST /notifications (idempotent per user, kind, order), GET /notifications.

A notification is for the caller (a shopper's token, passed on by order at checkout), or, when the order
service calls with its own token (shipment progress, refunds: no shopper is online), for the `user_id`
it names."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.kit import ApiError, clock
from services.kit.deps import Caller, CurrentUser, Db
from services.kit.jwt import Principal
from services.notification import store

log = logging.getLogger("notification.api")
router = APIRouter(tags=["notifications"])
Kind = Literal[
    "order_confirmation", "order_failed", "shipment_update", "order_delivered", "order_refunded", "general"
]
SENDS_FOR_USERS = ("order",)  # services that may notify a user without that user's token


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(examples=["order_confirmation"])
    subject: str = Field(min_length=1, max_length=200, examples=["Your order is confirmed"])
    body: str = Field(min_length=1, max_length=5000, examples=["Thank you for your order of 2 items."])
    order_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    user_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="only the order service, with its own token"
    )
    recipient: str | None = Field(
        None, max_length=254, description="the user's email; only with user_id", examples=["ada@example.com"]
    )


class NotificationOut(BaseModel):
    id: str
    kind: Kind
    subject: str
    body: str
    order_id: str | None
    channel: str
    recipient: str
    status: str
    created_at: str


class NotificationList(BaseModel):
    items: list[NotificationOut]


def _out(doc: dict[str, Any]) -> NotificationOut:
    return NotificationOut.model_validate({**doc, "id": doc["_id"]})


def _addressee(body: NotificationIn, caller: Principal) -> tuple[str, str]:
    """(user id, email) the notification is for: the caller, or the user a trusted service names."""
    if caller.is_user:
        if body.user_id is not None or body.recipient is not None:
            raise ApiError(403, "forbidden", "user_id and recipient are for the order service only")
        return caller.sub, caller.email
    if not any(caller.is_service(name) for name in SENDS_FOR_USERS):
        raise ApiError(403, "forbidden", f"{caller.sub} may not send notifications")
    if body.user_id is None:
        raise ApiError(422, "validation_error", "a service must name the user_id it notifies")
    return body.user_id, body.recipient or ""


@router.post(
    "/notifications",
    status_code=201,
    response_model=NotificationOut,
    summary="Queue a notification for the caller (idempotent per kind and order_id)",
    responses={403: {"description": "forbidden: user_id from a shopper, or a service other than order"}},
)
async def create_notification(
    body: NotificationIn, db: Db, response: Response, caller: Caller
) -> NotificationOut:
    user_id, recipient = _addressee(body, caller)
    notification_id = uuid.uuid4().hex
    doc = {
        "_id": notification_id,
        "user_id": user_id,
        # Without an order id every notification is new; with one, a repeat is the same notification.
        "dedupe_key": f"{body.kind}:{body.order_id}" if body.order_id else f"once:{notification_id}",
        "kind": body.kind,
        "subject": body.subject,
        "body": body.body,
        "order_id": body.order_id,
        "channel": "email",
        "recipient": recipient,
        "status": "queued",  # a mail relay would drain the outbox; this lab sends no real email
        "created_at": clock.now_iso(),
    }
    stored, created = await store.add(db, doc)
    if created:
        log.info("queued %s for user %s (order %s)", body.kind, user_id, body.order_id)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return _out(stored)


@router.get(
    "/notifications", response_model=NotificationList, summary="The caller's notifications, newest first"
)
async def list_notifications(
    db: Db, user: CurrentUser, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> NotificationList:
    docs = await store.for_user(db, user.sub, limit)
    return NotificationList(items=[_out(doc) for doc in docs])
