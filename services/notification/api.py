"""Notification API: POST /notifications (idempotent per user, kind, order), GET /notifications."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.kit import clock
from services.kit.jwt import Principal
from services.kit.security import current_user
from services.notification import store

log = logging.getLogger("notification.api")
router = APIRouter(tags=["notifications"])
User = Annotated[Principal, Depends(current_user)]
Kind = Literal["order_confirmation", "order_failed", "shipment_update", "general"]


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(examples=["order_confirmation"])
    subject: str = Field(min_length=1, max_length=200, examples=["Your order is confirmed"])
    body: str = Field(min_length=1, max_length=5000, examples=["Thank you for your order of 2 items."])
    order_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


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


@router.post(
    "/notifications",
    status_code=201,
    response_model=NotificationOut,
    summary="Queue a notification for the caller (idempotent per kind and order_id)",
)
async def create_notification(
    body: NotificationIn, request: Request, response: Response, user: User
) -> NotificationOut:
    notification_id = uuid.uuid4().hex
    doc = {
        "_id": notification_id,
        "user_id": user.sub,
        # Without an order id every notification is new; with one, a repeat is the same notification.
        "dedupe_key": f"{body.kind}:{body.order_id}" if body.order_id else f"once:{notification_id}",
        "kind": body.kind,
        "subject": body.subject,
        "body": body.body,
        "order_id": body.order_id,
        "channel": "email",
        "recipient": user.email,
        "status": "queued",  # a mail relay would drain the outbox; this lab sends no real email
        "created_at": clock.now_iso(),
    }
    stored, created = await store.add(request.app.state.db, doc)
    if created:
        log.info("queued %s for user %s (order %s)", body.kind, user.sub, body.order_id)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return _out(stored)


@router.get(
    "/notifications", response_model=NotificationList, summary="The caller's notifications, newest first"
)
async def list_notifications(
    request: Request, user: User, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> NotificationList:
    docs = await store.for_user(request.app.state.db, user.sub, limit)
    return NotificationList(items=[_out(doc) for doc in docs])
