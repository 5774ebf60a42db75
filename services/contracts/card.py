"""The payment card as the shopper typed it: one model for the frontend's form, order's checkout and
payment's charges, with the checks payment needs (so a card the frontend accepts is never refused later).

- `number`: 12 to 19 digits (spaces and dashes allowed in input, removed), passing the Luhn check;
- `expiry`: `MM/YY` or `MM/YYYY`, month 01-12, not in the past; normalized to `MM/YY`;
- `cvc`: 3 or 4 digits.
A violation is a 422 `validation_error` whose details name the field and say why, with an error `type` of
its own (`card_number_length`, `card_number_luhn`, `card_expiry_format`, `card_expiry_month`,
`card_expired`), so the web shop can mark the field and explain it in its own words.
Card numbers are never stored or logged whole (payment keeps the brand and the last four digits).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

_EXPIRY = re.compile(r"^(\d{2})\s*/\s*(\d{2}|\d{4})$")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class CardError(ValueError):
    """Why a card is refused before any charge; `code` becomes the error `type` in a 422's details."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normalize_number(raw: str) -> str:
    """Digits only (spaces and dashes allowed in input); CardError unless 12-19 digits passing Luhn."""
    digits = re.sub(r"[\s-]", "", raw)
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise CardError("card_number_length", "card number must have 12 to 19 digits")
    if not luhn_valid(digits):
        raise CardError("card_number_luhn", "card number fails the Luhn check")
    return digits


def parse_expiry(raw: str, now: datetime | None = None) -> tuple[int, int]:
    """`MM/YY` or `MM/YYYY` -> (month, year); CardError when malformed or already expired."""
    match = _EXPIRY.match(raw.strip())
    if not match:
        raise CardError("card_expiry_format", "expiry must look like MM/YY")
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise CardError("card_expiry_month", "expiry month must be 01-12")
    today = now or datetime.now(UTC)
    if (year, month) < (today.year, today.month):
        raise CardError("card_expired", "card has expired")
    return month, year


class CardIn(BaseModel):
    """A card as the shopper typed it; checked here, passed on by order, never stored whole by payment."""

    model_config = ConfigDict(extra="forbid", strict=True)

    number: str = Field(min_length=1, max_length=23, examples=["4242 4242 4242 4242"])
    expiry: str = Field(min_length=1, max_length=9, examples=["12/30"])
    cvc: str = Field(pattern=r"^\d{3,4}$", examples=["123"])

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        try:
            return normalize_number(value)
        except CardError as exc:
            raise PydanticCustomError(exc.code, str(exc)) from None

    @field_validator("expiry")
    @classmethod
    def _expiry(cls, value: str) -> str:
        try:
            month, year = parse_expiry(value)
        except CardError as exc:
            raise PydanticCustomError(exc.code, str(exc)) from None
        return f"{month:02d}/{year % 100:02d}"

    @field_validator("cvc", mode="before")
    @classmethod
    def _cvc(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value
