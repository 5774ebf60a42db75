"""Card checks and the simulated processor's test cards. Card numbers are never stored or logged."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Documented test cards (docs/architecture.md): number -> decline code (None = success).
TEST_CARDS: dict[str, str | None] = {
    "4242424242424242": None,
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
}
DECLINE_MESSAGES = {
    "card_declined": "the card was declined",
    "insufficient_funds": "the card has insufficient funds",
}
_EXPIRY = re.compile(r"^(\d{2})\s*/\s*(\d{2}|\d{4})$")


def normalize_number(raw: str) -> str:
    """Digits only (spaces and dashes allowed in input); ValueError unless 12-19 digits passing Luhn."""
    digits = re.sub(r"[\s-]", "", raw)
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise ValueError("card number must have 12 to 19 digits")
    if not luhn_valid(digits):
        raise ValueError("card number fails the Luhn check")
    return digits


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def parse_expiry(raw: str, now: datetime | None = None) -> tuple[int, int]:
    """`MM/YY` or `MM/YYYY` -> (month, year); ValueError when malformed or already expired."""
    match = _EXPIRY.match(raw.strip())
    if not match:
        raise ValueError("expiry must look like MM/YY")
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise ValueError("expiry month must be 01-12")
    today = now or datetime.now(UTC)
    if (year, month) < (today.year, today.month):
        raise ValueError("card has expired")
    return month, year


def brand(digits: str) -> str:
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"51", "52", "53", "54", "55"} or "2221" <= digits[:4] <= "2720":
        return "mastercard"
    if digits[:2] in {"34", "37"}:
        return "amex"
    return "card"


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    decline_code: str | None = None
    provider_charge_id: str | None = None


def simulate(digits: str) -> Outcome:
    """The built-in processor: test cards decline as documented, any other valid card succeeds."""
    code = TEST_CARDS.get(digits)
    return Outcome(succeeded=code is None, decline_code=code)


class CardIn(BaseModel):
    """A card as the shopper typed it; checked here, passed on by order, never stored whole by payment."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=12, max_length=23, examples=["4242 4242 4242 4242"])
    expiry: str = Field(min_length=4, max_length=9, examples=["12/30"])
    cvc: str = Field(pattern=r"^\d{3,4}$", examples=["123"])

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        return normalize_number(value)

    @field_validator("expiry")
    @classmethod
    def _expiry(cls, value: str) -> str:
        parse_expiry(value)
        return value.strip()
